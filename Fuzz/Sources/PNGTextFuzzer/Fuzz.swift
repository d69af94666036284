// libFuzzer entry point for the PNG text-chunk reader behind `glide sample --replay` and `glide inspect
// IMAGE.png`: every input is read with `readPNGText` (the signature is prepended when missing), as given and
// with its chunk CRCs recomputed (to reach the parsing behind the CRC check), with the default and a small
// text limit. Fields read successfully are written back with `encodePNG(_:text:)` and must read back equal.
import Imaging
import FuzzSupport
import FuzzDriver   // links the C `PNGTextFuzzer_main` that starts libFuzzer

let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
let pixel = try! Image(width: 1, height: 1, channels: 3, pixels: [1, 2, 3])

func readAll(_ bytes: [UInt8]) {
    _ = try? readPNGText(bytes: bytes, maxTextBytes: 64)
    guard let fields = try? readPNGText(bytes: bytes) else { return }
    // Round trip: whatever was read can be written (keywords were validated; NUL never gets through) and reads
    // back the same.
    guard let png = try? encodePNG(pixel, text: fields, compressionLevel: 1) else {
        preconditionFailure("fields read from a PNG could not be written back: \(fields)")
    }
    let again = try? readPNGText(bytes: png, maxTextBytes: Int.max)
    precondition(again == fields, "text fields changed in a write/read round trip")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func pngTextFuzzTarget(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if !bytes.starts(with: signature) { bytes = signature + bytes }
    readAll(bytes)
    if let repaired = repairingPNGChunkCRCs(bytes) { readAll(repaired) }
    return 0
}
