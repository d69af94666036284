// libFuzzer entry point: every input is tried as a whole checkpoint file (zip or legacy) and as a
// standalone pickle. Any accepted tensor is read back in full, so bad views would be caught by ASan.
import Checkpoint
import FuzzDriver   // links the C `CheckpointFuzzer_main` that starts libFuzzer

@_cdecl("LLVMFuzzerTestOneInput")
public func checkpointFuzzTarget(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let checkpoint = try? TorchCheckpoint(bytes: Array(bytes)) {
        var sum: UInt8 = 0
        for tensor in checkpoint.tensors {
            tensor.withContiguousBytes { packed in
                for b in packed { sum &+= b }
            }
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(tensor.byteCount, 1), alignment: 16)
            try? tensor.copyContiguous(into: UnsafeMutableRawBufferPointer(rebasing: out[0..<tensor.byteCount]))
            out.deallocate()
        }
        _ = checkpoint.metadata.values.map(\.description)
        blackHole(sum)
    }
    if let value = try? PickleDecoder.decode(bytes) {
        blackHole(UInt8(truncatingIfNeeded: value.description.utf8.count))
    }
    return 0
}

@inline(never) func blackHole(_ x: UInt8) { if x == 0x5A && x != 0x5A { print(x) } }
