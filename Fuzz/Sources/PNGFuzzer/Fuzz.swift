// libFuzzer entry point: every input is decoded as a PNG (the signature is prepended when missing, so
// mutations of the first bytes are not wasted), as given and with its chunk CRCs recomputed (to reach the
// code behind the CRC check), with and without EXIF orientation. Every decoded pixel is read so that ASan
// sees any buffer the decoder got wrong.
import Imaging
import FuzzSupport
import FuzzDriver   // links the C `PNGFuzzer_main` that starts libFuzzer

let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

func decodeAll(_ bytes: [UInt8]) {
    for orient in [true, false] {
        // A small pixel limit keeps single inputs from asking for gigabytes (the limit itself is tested).
        if let image = try? decodeImage(bytes: bytes, maxPixels: 1 << 20, applyEXIFOrientation: orient) {
            var sum: UInt8 = 0
            for b in image.pixels { sum &+= b }
            precondition(image.pixels.count == image.width * image.height * image.channels)
            blackHole(sum)
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func pngFuzzTarget(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if !bytes.starts(with: signature) { bytes = signature + bytes }
    decodeAll(bytes)
    if let repaired = repairingPNGChunkCRCs(bytes) { decodeAll(repaired) }
    return 0
}

@inline(never) func blackHole(_ x: UInt8) { if x == 0x5A && x != 0x5A { print(x) } }
