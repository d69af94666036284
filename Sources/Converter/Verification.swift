// `glide verify`: CRCs and header of a .glw file, and (with a source) a per-tensor comparison:
// bit-exact for f32, exact round-to-nearest-even for f16/bf16, error figures and the half-step bound for int8.
import ElementConversion
import Foundation
import Checkpoint
import WeightFormat

/// Result of comparing one stored tensor with its source.
public struct TensorComparison: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// Bit-identical to the exact conversion of the source.
        case exact
        /// int8: every |w - q*scale| <= scale/2 (what round-to-nearest guarantees).
        case withinQuantizationBound
        /// Not what the source converts to; the string says how.
        case mismatch(String)
    }
    public let name: String
    public let storedType: WeightDType
    public let sourceType: String
    public let outcome: Outcome
    /// Error figures against the source as f32 (for every float tensor).
    public let maxAbsError: Double
    public let rmse: Double
    /// ||w - w'|| / ||w|| (0 when the source is all zeros and so is the copy).
    public let relativeError: Double
    public let elementCount: Int
}

/// Result of `verifyGLW`.
public struct VerificationReport: Sendable {
    /// CRC and padding failures (empty when every tensor's bytes are intact).
    public let checksumFailures: [WeightFormatError]
    public let tensorCount: Int
    /// Per-tensor comparisons (empty without a source).
    public let comparisons: [TensorComparison]
    /// Source tensors missing from the file, and file tensors missing from the source.
    public let missingFromFile: [String]
    public let missingFromSource: [String]
    /// Overall int8 figures (over all int8 tensors' elements), nil when there is none.
    public let int8MaxAbsError: Double?
    public let int8RMSE: Double?
    public let int8RelativeError: Double?

    /// True when the file is intact and (with a source) every tensor is exactly what it should be.
    public var isSound: Bool {
        checksumFailures.isEmpty && missingFromFile.isEmpty && missingFromSource.isEmpty
            && comparisons.allSatisfy { !$0.isMismatch }
    }
}

extension TensorComparison {
    var isMismatch: Bool { if case .mismatch = outcome { return true }; return false }
}

/// Checks `path` (header and every CRC); with `source` (a torch checkpoint or another .glw), compares every tensor.
public func verifyGLW(path: String, against source: String?, progress: ((String, Int, Int) -> Void)? = nil) throws -> VerificationReport {
    let file = try WeightFile(path: path)
    let failures = file.checksumFailures(progress: { progress?("checking", $0, $1) })
    guard let source else {
        return VerificationReport(checksumFailures: failures, tensorCount: file.tensors.count, comparisons: [], missingFromFile: [],
                                  missingFromSource: [], int8MaxAbsError: nil, int8RMSE: nil, int8RelativeError: nil)
    }
    var sources: [SourceTensor]
    var keepAlive: AnyObject
    if isGLW(source) {
        let f = try WeightFile(path: source)
        sources = SourceTensor.all(from: f); keepAlive = f
    } else {
        let c = try TorchCheckpoint(path: source, verifyChecksums: false)
        sources = SourceTensor.all(from: c); keepAlive = c
    }
    defer { withExtendedLifetime(keepAlive) {} }
    let byName = Dictionary(sources.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    let fileNames = Set(file.tensorNames)
    var comparisons: [TensorComparison] = []
    var missingFromSource: [String] = []
    var sumSq = 0.0, sumRef = 0.0, maxAbs = 0.0, any8 = false
    let total = file.tensors.reduce(0) { $0 + $1.data.count }
    var done = 0
    for t in file.tensors {
        guard let s = byName[t.name] else { missingFromSource.append(t.name); continue }
        let c = try compare(t, s)
        if t.dtype == .int8 {
            any8 = true
            sumSq += c.rmse * c.rmse * Double(c.elementCount)
            maxAbs = max(maxAbs, c.maxAbsError)
            sumRef += c.relativeError > 0 ? pow(c.rmse / c.relativeError, 2) * Double(c.elementCount) : 0
        }
        comparisons.append(c)
        done += t.data.count
        progress?("comparing", done, total)
    }
    let allElements8 = comparisons.filter { $0.storedType == .int8 }.reduce(0) { $0 + $1.elementCount }
    return VerificationReport(checksumFailures: failures, tensorCount: file.tensors.count, comparisons: comparisons,
                              missingFromFile: sources.map(\.name).filter { !fileNames.contains($0) },
                              missingFromSource: missingFromSource,
                              int8MaxAbsError: any8 ? maxAbs : nil,
                              int8RMSE: any8 ? (sumSq / Double(max(allElements8, 1))).squareRoot() : nil,
                              int8RelativeError: any8 ? (sumRef > 0 ? (sumSq / sumRef).squareRoot() : 0) : nil)
}

func isGLW(_ path: String) -> Bool {
    guard let h = FileHandle(forReadingAtPath: path) else { return false }
    defer { try? h.close() }
    return (try? h.read(upToCount: 4)).map { [UInt8]($0) == GLWLayout.magic } ?? false
}

/// Compares one stored tensor with its source, chunk by chunk.
private func compare(_ t: WeightTensor, _ s: SourceTensor) throws -> TensorComparison {
    func result(_ o: TensorComparison.Outcome, _ mx: Double = 0, _ rmse: Double = 0, _ rel: Double = 0) -> TensorComparison {
        TensorComparison(name: t.name, storedType: t.dtype, sourceType: s.element.glwName, outcome: o,
                         maxAbsError: mx, rmse: rmse, relativeError: rel, elementCount: t.elementCount)
    }
    guard t.shape == s.shape else { return result(.mismatch("shape \(t.shape), source \(s.shape)")) }
    let stored = SourceView(bytes: t.data, scales: t.scales, releasable: true)
    let n = t.elementCount
    let chunk = 1 << 18
    var outcome: TensorComparison.Outcome = t.dtype == .int8 ? .withinQuantizationBound : .exact
    if !s.element.isFloat || !(t.dtype == .f32 || t.dtype == .f16 || t.dtype == .bf16 || t.dtype == .int8) {
        guard !s.element.isFloat, t.dtype == .i64 || t.dtype == .bool else {
            return result(.mismatch("stored \(t.dtype) but the source is \(s.element.glwName)"))
        }
        var bad: Int? = nil
        try s.withView { v in
            if t.dtype == .bool {
                guard s.element == .bool else { bad = 0; return }
                bad = (0..<n).first { v.bytes[$0] != t.data[$0] }
            } else {
                let a = UnsafeMutablePointer<Int64>.allocate(capacity: max(n, 1)); defer { a.deallocate() }
                readInts(v, s.element, start: 0, count: n, into: a)
                bad = (0..<n).first { a[$0] != t.data.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) }
            }
        }
        return result(bad.map { .mismatch("element \($0) differs") } ?? .exact)
    }
    let ref = UnsafeMutablePointer<Float>.allocate(capacity: chunk); defer { ref.deallocate() }
    let got = UnsafeMutablePointer<Float>.allocate(capacity: chunk); defer { got.deallocate() }
    var sumSq = 0.0, sumRef = 0.0, maxAbs = 0.0
    let k = s.rowLength
    try s.withView { v in
        var start = 0
        while start < n {
            let m = min(chunk, n - start)
            readFloats(v, s.element, rowLength: k, start: start, count: m, into: ref)
            readFloats(stored, SourceElement(t.dtype), rowLength: t.elementCount / max(t.shape.first ?? 1, 1), start: start, count: m, into: got)
            for i in 0..<m {
                let w = ref[i], w2 = got[i]
                let e = Double(w2) - Double(w)
                if w.isFinite && w2.isFinite {
                    sumSq += e * e; sumRef += Double(w) * Double(w); maxAbs = max(maxAbs, abs(e))
                }
                if case .mismatch = outcome { continue }
                switch t.dtype {
                case .f32:
                    if w.bitPattern != w2.bitPattern && !(w.isNaN && w2.isNaN) { outcome = .mismatch("element \(start + i): \(w2), source \(w)") }
                case .f16:
                    let expect = f32ToF16(w), have = t.data.loadUnaligned(fromByteOffset: (start + i) * 2, as: UInt16.self)
                    if expect != have { outcome = .mismatch("element \(start + i): f16 \(String(have, radix: 16)), round-to-nearest-even gives \(String(expect, radix: 16))") }
                case .bf16:
                    let expect = f32ToBF16(w), have = t.data.loadUnaligned(fromByteOffset: (start + i) * 2, as: UInt16.self)
                    if expect != have { outcome = .mismatch("element \(start + i): bf16 \(String(have, radix: 16)), round-to-nearest-even gives \(String(expect, radix: 16))") }
                case .int8:
                    let row = (start + i) / max(t.elementCount / t.shape[0], 1)
                    let scale = t.scales![row]
                    let bound = Double(scale) * 0.5 * (1 + 1e-5) + Double(abs(w)) * 1e-6
                    if !(abs(e) <= bound) { outcome = .mismatch("element \(start + i): |error| \(abs(e)) > scale/2 = \(Double(scale) / 2)") }
                default: break
                }
            }
            releasePages(v, byteOffset: start * s.element.byteWidth, count: m * s.element.byteWidth)
            releasePages(stored, byteOffset: start * t.dtype.byteWidth, count: m * t.dtype.byteWidth)
            start += m
        }
    }
    let rmse = n > 0 ? (sumSq / Double(n)).squareRoot() : 0
    let rel = sumRef > 0 ? (sumSq / sumRef).squareRoot() : 0
    return result(outcome, maxAbs, rmse, rel)
}
