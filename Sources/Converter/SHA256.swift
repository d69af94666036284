// SHA-256 (FIPS 180-4) for the provenance record: streaming, no dependencies.

/// Incremental SHA-256.
public struct SHA256 {
    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    public init() {}

    /// Adds bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        length &+= UInt64(bytes.count)
        var rest = bytes
        if !pending.isEmpty {
            let n = min(64 - pending.count, rest.count)
            pending += rest[0..<n]
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            if pending.count == 64 {
                pending.withUnsafeBytes { compress($0.baseAddress!, blocks: 1) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        let blocks = rest.count / 64
        if blocks > 0 { compress(rest.baseAddress!, blocks: blocks) }
        pending += rest[(blocks * 64)...]
    }

    /// Finishes and returns the digest as 64 lowercase hex digits.
    public mutating func finalizeHex() -> String {
        let bitLength = length &* 8
        var tail: [UInt8] = [0x80]
        while (pending.count + tail.count) % 64 != 56 { tail.append(0) }
        for i in (0..<8).reversed() { tail.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
        let saved = length
        tail.withUnsafeBytes { update($0) }
        length = saved
        let words = [h.0, h.1, h.2, h.3, h.4, h.5, h.6, h.7]
        let digits = Array("0123456789abcdef")
        var s = ""
        for w in words { for shift in stride(from: 28, through: 0, by: -4) { s.append(digits[Int((w >> UInt32(shift)) & 15)]) } }
        return s
    }

    private mutating func compress(_ p: UnsafeRawPointer, blocks: Int) {
        var w = [UInt32](repeating: 0, count: 64)
        Self.k.withUnsafeBufferPointer { k in
        w.withUnsafeMutableBufferPointer { w in
            var (a0, b0, c0, d0, e0, f0, g0, h0) = h
            for blk in 0..<blocks {
                let base = p + blk * 64
                for i in 0..<16 { w[i] = UInt32(bigEndian: base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
                for i in 16..<64 {
                    let s0 = w[i - 15].rotr(7) ^ w[i - 15].rotr(18) ^ (w[i - 15] >> 3)
                    let s1 = w[i - 2].rotr(17) ^ w[i - 2].rotr(19) ^ (w[i - 2] >> 10)
                    w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
                }
                var (a, b, c, d, e, f, g, hh) = (a0, b0, c0, d0, e0, f0, g0, h0)
                for i in 0..<64 {
                    let S1 = e.rotr(6) ^ e.rotr(11) ^ e.rotr(25)
                    let ch = (e & f) ^ (~e & g)
                    let t1 = hh &+ S1 &+ ch &+ k[i] &+ w[i]
                    let S0 = a.rotr(2) ^ a.rotr(13) ^ a.rotr(22)
                    let maj = (a & b) ^ (a & c) ^ (b & c)
                    let t2 = S0 &+ maj
                    hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
                }
                a0 &+= a; b0 &+= b; c0 &+= c; d0 &+= d; e0 &+= e; f0 &+= f; g0 &+= g; h0 &+= hh
            }
            h = (a0, b0, c0, d0, e0, f0, g0, h0)
        }
        }
    }
}

extension UInt32 {
    @inline(__always) fileprivate func rotr(_ n: UInt32) -> UInt32 { (self >> n) | (self << (32 - n)) }
}

#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 that uses the system's libcrypto (OpenSSL 3, which uses the CPU's SHA instructions) when it can be
/// loaded at run time, and the pure-Swift `SHA256` otherwise. Same digests either way (tested).
public final class FastSHA256 {
    private typealias InitFn = @convention(c) (UnsafeMutableRawPointer) -> Int32
    private typealias UpdateFn = @convention(c) (UnsafeMutableRawPointer, UnsafeRawPointer?, Int) -> Int32
    private typealias FinalFn = @convention(c) (UnsafeMutablePointer<UInt8>, UnsafeMutableRawPointer) -> Int32
    private struct Library { let update: UpdateFn; let final: FinalFn; let initialize: InitFn }
    nonisolated(unsafe) private static var library: Library? = {
        for name in ["libcrypto.so.3", "libcrypto.so"] {
            guard let h = dlopen(name, RTLD_NOW | RTLD_LOCAL),
                  let i = dlsym(h, "SHA256_Init"), let u = dlsym(h, "SHA256_Update"), let f = dlsym(h, "SHA256_Final") else { continue }
            return Library(update: unsafeBitCast(u, to: UpdateFn.self), final: unsafeBitCast(f, to: FinalFn.self),
                           initialize: unsafeBitCast(i, to: InitFn.self))
        }
        return nil
    }()

    private var swift = SHA256()
    private let context: UnsafeMutableRawPointer?   // SHA256_CTX (112 bytes in OpenSSL 3; 256 reserved)
    private let lib: Library?

    /// Which implementation is in use: "libcrypto" or "swift".
    public let backend: String

    /// - Parameter allowLibrary: false forces the pure-Swift implementation.
    public init(allowLibrary: Bool = true) {
        lib = allowLibrary ? FastSHA256.library : nil
        if let lib {
            let c = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 16)
            c.initializeMemory(as: UInt8.self, repeating: 0, count: 256)
            _ = lib.initialize(c)
            context = c
            backend = "libcrypto"
        } else {
            context = nil
            backend = "swift"
        }
    }
    deinit { context?.deallocate() }

    /// Adds bytes.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        if let lib, let context { _ = lib.update(context, bytes.baseAddress, bytes.count) } else { swift.update(bytes) }
    }

    /// Finishes and returns the digest as 64 lowercase hex digits.
    public func finalizeHex() -> String {
        guard let lib, let context else { return swift.finalizeHex() }
        var md = [UInt8](repeating: 0, count: 32)
        _ = lib.final(&md, context)
        let digits = Array("0123456789abcdef")
        return String(md.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }
}
