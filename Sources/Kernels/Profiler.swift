// An opt-in per-op profiler: kernel entry points open a region keyed by op kind + shape; times are summed
// per key, exclusive of nested regions, so the keys of one model step add up to the step.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

/// One profiled op kind + shape: counts and times summed over every call since `KernelProfiler.start`.
public struct KernelProfileEntry: Sendable, Equatable {
    /// What ran, e.g. "conv2d winograd", "group norm", "attention", "winograd input transform".
    public var kind: String
    /// The shape (and path details such as the weight type), e.g. "3x3 s1 f32 192->192 2x64x64".
    public var shape: String
    /// Index in `KernelProfiler.entries` of the region this one first ran inside, or nil at top level.
    public var parent: Int?
    /// Calls recorded.
    public var calls: Int
    /// Seconds from entry to exit, nested regions included.
    public var inclusiveSeconds: Double
    /// Seconds inside this region minus its nested regions and minus its GEMM packing.
    public var exclusiveSeconds: Double
    /// Seconds spent packing (and quantizing) the GEMM activation / im2col operand directly in this region.
    public var packActivationSeconds: Double
    /// Seconds spent packing the GEMM weight operand directly in this region.
    public var packWeightSeconds: Double
    /// Floating-point operations (multiply-adds x 2) of the region's nominal work, summed over calls.
    public var flops: Double

    /// An entry with the given counts (the profiler builds these; public for reports and their tests).
    public init(kind: String, shape: String, parent: Int?, calls: Int, inclusiveSeconds: Double,
                exclusiveSeconds: Double, packActivationSeconds: Double, packWeightSeconds: Double, flops: Double) {
        self.kind = kind; self.shape = shape; self.parent = parent; self.calls = calls
        self.inclusiveSeconds = inclusiveSeconds; self.exclusiveSeconds = exclusiveSeconds
        self.packActivationSeconds = packActivationSeconds; self.packWeightSeconds = packWeightSeconds
        self.flops = flops
    }

    /// `flops / inclusiveSeconds` in GFLOP/s, or nil for regions without arithmetic counted.
    public var gflops: Double? {
        flops > 0 && inclusiveSeconds > 0 ? flops / inclusiveSeconds / 1e9 : nil
    }
}

/// Records where kernel time goes, per op kind and shape. Off by default; while off, every hook is one
/// branch. Only the thread that called `start` records (the model's calling thread): work the kernels run on
/// worker threads lies inside a region of that thread, so the regions' exclusive times add up to the
/// caller's wall (or CPU) time without double counting.
///
/// GEMM packing is timed inside the C kernels on whatever thread packs; with more than one thread its sum
/// over threads is divided by `KernelSettings.threadCount` (exact with one thread, an estimate otherwise).
///
/// Hook pattern at a kernel entry:
/// `let probe = KernelProfiler.begin("group norm", "..."); defer { KernelProfiler.end(probe) }`
public enum KernelProfiler {
    nonisolated(unsafe) private static var recording = false
    nonisolated(unsafe) private static var owner = pthread_self()
    nonisolated(unsafe) private static var threadCPU = false
    nonisolated(unsafe) private static var index: [String: Int] = [:]
    nonisolated(unsafe) private static var store: [KernelProfileEntry] = []
    nonisolated(unsafe) private static var stack: [Frame] = []

    private struct Frame {
        var entry: Int
        var start: Double
        var pack: (Double, Double)
        var childSeconds: Double = 0
        var childPack: (Double, Double) = (0, 0)
    }

    /// True while recording.
    public static var isRecording: Bool { recording }

    /// Clears previous entries and starts recording on the calling thread. With `threadCPUTime` regions
    /// are timed with the thread's CPU clock (use with `KernelSettings.threadCount = 1`, where all work runs on
    /// the calling thread; insensitive to other processes), else with the monotonic clock.
    public static func start(threadCPUTime: Bool = false) {
        reset()
        threadCPU = threadCPUTime
        owner = pthread_self()
        glide_profile_configure(1, threadCPUTime ? 1 : 0)
        recording = true
    }

    /// Stops recording (entries stay readable).
    public static func stop() {
        recording = false
        glide_profile_configure(0, threadCPU ? 1 : 0)
    }

    /// Forgets every entry.
    public static func reset() {
        index = [:]
        store = []
        stack = []
    }

    /// Every recorded op kind + shape, in order of first call.
    public static var entries: [KernelProfileEntry] { store }

    /// The profiler's clock in seconds (thread CPU time after `start(threadCPUTime: true)`, else monotonic).
    public static func now() -> Double { Double(glide_profile_now_ns()) * 1e-9 }

    /// Opens a region; returns a token for `end`, or -1 when not recording (then `shape` and `flops` are
    /// not evaluated). With `unlessNested`, nothing is recorded inside another region (a `gemm` called by
    /// `conv2d` belongs to the convolution).
    @inline(__always)
    public static func begin(_ kind: @autoclosure () -> StaticString, _ shape: @autoclosure () -> String,
                             flops: @autoclosure () -> Double = 0, unlessNested: Bool = false) -> Int {
        if !recording { return -1 }
        return open(kind(), shape(), flops(), unlessNested)
    }

    /// Closes the region `token` from `begin` (does nothing for -1).
    @inline(__always)
    public static func end(_ token: Int) {
        if token < 0 { return }
        close(token)
    }

    /// Runs `body` as a region (for callers outside the Kernels module, e.g. model-level copies).
    public static func measure<T>(_ kind: StaticString, _ shape: @autoclosure () -> String,
                                  _ body: () throws -> T) rethrows -> T {
        let probe = begin(kind, shape()); defer { end(probe) }
        return try body()
    }

    private static func packSeconds() -> (Double, Double) {
        let scale = 1e-9 / Double(max(1, KernelSettings.threadCount))
        return (Double(glide_profile_read_ns(Int32(GLIDE_PROFILE_PACK_ACTIVATIONS))) * scale,
                Double(glide_profile_read_ns(Int32(GLIDE_PROFILE_PACK_WEIGHTS))) * scale)
    }

    @inline(never)
    private static func open(_ kind: StaticString, _ shape: String, _ flops: Double, _ unlessNested: Bool) -> Int {
        guard pthread_equal(pthread_self(), owner) != 0 else { return -1 }
        if unlessNested && !stack.isEmpty { return -1 }
        let kindName = kind.description
        let key = kindName + "\u{1}" + shape
        let entry: Int
        if let i = index[key] {
            entry = i
        } else {
            entry = store.count
            index[key] = entry
            store.append(KernelProfileEntry(kind: kindName, shape: shape, parent: stack.last?.entry, calls: 0,
                                            inclusiveSeconds: 0, exclusiveSeconds: 0, packActivationSeconds: 0,
                                            packWeightSeconds: 0, flops: 0))
        }
        store[entry].calls += 1
        store[entry].flops += flops
        stack.append(Frame(entry: entry, start: now(), pack: packSeconds()))
        return stack.count - 1
    }

    @inline(never)
    private static func close(_ token: Int) {
        guard token == stack.count - 1 else {
            // Unbalanced (a region left without `end`): drop the inner frames.
            if token < stack.count { stack.removeLast(stack.count - token) }
            return
        }
        let f = stack.removeLast()
        let elapsed = now() - f.start
        let pack = packSeconds()
        let packA = pack.0 - f.pack.0, packW = pack.1 - f.pack.1
        let ownA = packA - f.childPack.0, ownW = packW - f.childPack.1
        store[f.entry].inclusiveSeconds += elapsed
        store[f.entry].packActivationSeconds += ownA
        store[f.entry].packWeightSeconds += ownW
        store[f.entry].exclusiveSeconds += elapsed - f.childSeconds - ownA - ownW
        if !stack.isEmpty {
            stack[stack.count - 1].childSeconds += elapsed
            stack[stack.count - 1].childPack.0 += packA
            stack[stack.count - 1].childPack.1 += packW
        }
    }
}

/// The weight type and path details of a convolution, for profile labels: "3x3 s1 f32 192->192 2x64x64".
func profileLabel(_ g: Conv2dGeometry, _ weight: WeightMatrix) -> String {
    "\(g.kernelSize)x\(g.kernelSize) s\(g.stride) \(weight.dtypeName) \(g.inChannels)->\(g.outChannels) "
        + "\(g.batch)x\(g.height)x\(g.width)"
}

/// The path `conv2d` takes for this geometry and weight type now, as a profile kind. Mirrors `conv2d`'s
/// dispatch: a new convolution path adds its kind here (the hook in `conv2d` stays one line).
func conv2dProfileKind(_ g: Conv2dGeometry, _ weight: WeightMatrix) -> StaticString {
    var int8Weights = false
    if case .int8 = weight.elements { int8Weights = true }
    if conv2dUsesWinograd(g, int8Weights: int8Weights) { return "conv2d winograd" }
    if g.kernelSize == 1 && g.stride == 1 && g.padding == 0 { return "conv2d 1x1 gemm" }
    return KernelSettings.useAVX2 ? "conv2d implicit gemm" : "conv2d scalar"
}

extension KernelProfiler {
    /// The shape label of an attention region, e.g. "4 heads x 64 ch, 256 queries (16x16) x (128 + 256) keys"
    /// (encoder keys first), as `attention` records it; for model code that times its own attention.
    public static func attentionShape(heads: Int, headDim: Int, queries: Int, encoderKeys: Int, keys: Int) -> String {
        attentionProfileLabel(heads, headDim, queries, encoderKeys, keys)
    }
}

/// "4 heads x 64 ch, 256 queries (16x16) x (128 + 256) keys" for attention profile labels.
func attentionProfileLabel(_ heads: Int, _ headDim: Int, _ queries: Int, _ encoder: Int, _ keys: Int) -> String {
    let side = Int(Double(queries).squareRoot())
    let grid = side * side == queries && side > 1 ? " (\(side)x\(side))" : ""
    let keyText = encoder > 0 ? "(\(encoder) + \(keys))" : "\(keys)"
    return "\(heads) heads x \(headDim) ch, \(queries) queries\(grid) x \(keyText) keys"
}
