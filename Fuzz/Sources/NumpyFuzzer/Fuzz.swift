// libFuzzer entry point: every input is parsed as a `.npy` file; an accepted array is converted with every
// typed accessor (the ones that do not match the dtype must throw, not trap) and re-encoded, and the
// re-encoded bytes must decode to the same array.
import NumpyIO
import FuzzDriver   // links the C `NumpyFuzzer_main` that starts libFuzzer

@_cdecl("LLVMFuzzerTestOneInput")
public func numpyFuzzTarget(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let array = try? Npy.decode(bytes) else { return 0 }
    var n = 0
    n &+= (try? array.float32Values())?.count ?? 0
    n &+= (try? array.float64Values())?.count ?? 0
    n &+= (try? array.int64Values())?.count ?? 0
    n &+= (try? array.int32Values())?.count ?? 0
    n &+= (try? array.uint8Values())?.count ?? 0
    n &+= (try? array.boolValues())?.count ?? 0
    n &+= (try? array.floatValues())?.count ?? 0
    n &+= (try? array.intValues())?.count ?? 0
    let again = try? Npy.decode(Npy.encode(array))
    precondition(again == array, "encode/decode round trip changed the array")
    blackHole(UInt8(truncatingIfNeeded: n))
    return 0
}

@inline(never) func blackHole(_ x: UInt8) { if x == 0x5A && x != 0x5A { print(x) } }
