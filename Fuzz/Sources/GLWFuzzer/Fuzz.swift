// libFuzzer entry point: every input is written to a scratch file and opened as a `.glw` weight file, as
// given and with its header CRC recomputed (to reach the checks behind it) (`WeightFile(path:)`: the 64-byte header, the metadata JSON, the tensor table, every offset, length,
// alignment, overlap, dtype and shape check). An accepted file then has every tensor's bytes and int8
// scales read, every embedded file read, and its CRC-32s and padding verified, so that ASan sees any view
// the validator let through that lies outside the mapping.
#if canImport(Glibc)
import Glibc
#endif
import WeightFormat
import FuzzSupport
import FuzzDriver   // links the C `GLWFuzzer_main` that starts libFuzzer

// /dev/shm keeps the per-input write in memory; one scratch file per fuzzing process.
let scratchPath: String = {
    let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(dir)/glw-fuzz-\(getpid()).glw"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func glwFuzzTarget(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    openAndReadAll(bytes)
    if let repaired = repairingGLWHeaderCRC(bytes) { openAndReadAll(repaired) }
    return 0
}

func openAndReadAll(_ bytes: [UInt8]) {
    let size = bytes.count
    let fd = open(scratchPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "cannot create \(scratchPath)")
    var written = 0
    while written < size {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, size - written) }
        precondition(n > 0, "write to \(scratchPath) failed")
        written += n
    }
    close(fd)
    guard let file = try? WeightFile(path: scratchPath) else { return }
    var sum: UInt8 = 0
    for tensor in file.tensors {
        for b in tensor.data { sum &+= b }
        if let scales = tensor.scales { for s in scales { sum &+= UInt8(truncatingIfNeeded: s.bitPattern) } }
        sum &+= UInt8(truncatingIfNeeded: tensor.elementCount &+ tensor.regionByteCount)
        precondition(file.tensor(tensor.name) != nil)
    }
    for embedded in file.embeddedFiles { for b in embedded.bytes { sum &+= b } }
    sum &+= UInt8(truncatingIfNeeded: file.checksumFailures().count)
    sum &+= UInt8(truncatingIfNeeded: file.hyperparameters.count + (file.modelName?.utf8.count ?? 0))
    blackHole(sum)
}

@inline(never) func blackHole(_ x: UInt8) { if x == 0x5A && x != 0x5A { print(x) } }
