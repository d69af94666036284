// libFuzzer entry point: every input is decoded as a JPEG through libjpeg-turbo and our setjmp shim
// (Sources/CImagingShims) (the SOI marker is prepended when missing, so mutations of the first bytes are
// not wasted), with and without EXIF orientation. Every decoded pixel is read so that ASan sees any buffer
// the shim or the colour conversion got wrong.
import Imaging
import FuzzDriver   // links the C `JPEGFuzzer_main` that starts libFuzzer

let soi: [UInt8] = [0xFF, 0xD8, 0xFF]

@_cdecl("LLVMFuzzerTestOneInput")
public func jpegFuzzTarget(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if !bytes.starts(with: soi) { bytes = soi + bytes }
    for orient in [true, false] {
        // A small pixel limit keeps single inputs from asking for gigabytes (the limit itself is tested).
        if let image = try? decodeImage(bytes: bytes, maxPixels: 1 << 20, applyEXIFOrientation: orient) {
            var sum: UInt8 = 0
            for b in image.pixels { sum &+= b }
            precondition(image.pixels.count == image.width * image.height * image.channels)
            blackHole(sum)
        }
    }
    return 0
}

@inline(never) func blackHole(_ x: UInt8) { if x == 0x5A && x != 0x5A { print(x) } }
