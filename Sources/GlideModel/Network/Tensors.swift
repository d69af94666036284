// Dense float32 tensors for the network's inputs and outputs, and the scratch buffers layers use.
import Kernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A dense row-major float32 tensor (NCHW for images): a model input or output.
public struct FloatTensor: Equatable, Sendable {
    /// Dimensions, outermost first.
    public var shape: [Int]
    /// `shape.reduce(1, *)` values in row-major order.
    public var values: [Float]

    /// A tensor of the given shape and values; the value count must equal the shape's product.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "FloatTensor: \(values.count) values for shape \(shape)")
        self.shape = shape
        self.values = values
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, values: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// Number of elements.
    public var count: Int { values.count }
}

/// An owned, uninitialised-on-allocation float buffer for activations (no copy-on-write, no bounds checks
/// in the hot loops), or a view of a contiguous part of another one. Freed when the last reference goes (back to
/// the `ActivationPool` it came from, if any).
final class Activation: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    /// [batch, channels, height, width] (or [batch, tokens, width] for the text transformer).
    let shape: [Int]
    /// The activation whose buffer this one views (kept alive by the view), or nil when it owns its buffer.
    private let parent: Activation?
    /// The pool the buffer returns to, or nil when it is freed.
    private let pool: ActivationPool?

    init(shape: [Int]) {
        self.shape = shape
        count = shape.reduce(1, *)
        pool = ActivationPool.current
        pointer = pool?.take(count) ?? ActivationPool.allocate(count)
        parent = nil
    }

    /// A view of `shape` starting `offset` floats into `parent`'s buffer (e.g. some channel planes of a batch-1
    /// concatenation, written in place by the layer that produces them).
    init(viewing parent: Activation, offset: Int, shape: [Int]) {
        self.shape = shape
        count = shape.reduce(1, *)
        precondition(offset >= 0 && offset + count <= parent.count, "Activation view out of its parent's bounds")
        pointer = parent.pointer + offset
        self.parent = parent
        pool = nil
    }

    convenience init(shape: [Int], zeroed: Bool) {
        self.init(shape: shape)
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }

    convenience init(_ tensor: FloatTensor) {
        self.init(shape: tensor.shape)
        tensor.values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }

    deinit {
        if parent != nil { return }
        if let pool { pool.give(pointer, count) } else { pointer.deallocate() }
    }

    var batch: Int { shape[0] }
    var channels: Int { shape[1] }
    var height: Int { shape[2] }
    var width: Int { shape[3] }
    var spatial: Int { shape.count == 4 ? shape[2] * shape[3] : shape[2] }

    func tensor() -> FloatTensor {
        FloatTensor(shape: shape, values: Array(UnsafeBufferPointer(start: pointer, count: count)))
    }
}

/// Activation buffers kept for reuse by the model that owns the pool: a forward pass takes its buffers here
/// (while the model installs the pool as `current`) and gives them back when they are released, so every step after
/// the first finds a free buffer of each size it asks for and allocates nothing. Buffers are kept per exact size:
/// a step asks for the same sizes in the same order every time. Allocations it makes are counted
/// (`HeapAllocations`).
final class ActivationPool: @unchecked Sendable {
    /// The pool that `Activation(shape:)` takes from on this thread (nil: plain allocations).
    @TaskLocal static var current: ActivationPool?

    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var held = 0
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        release()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// A counted heap allocation of `count` floats (at least one).
    static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        HeapAllocations.count(bytes: 4 * max(count, 1))
        return UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    }

    /// A free buffer of exactly `count` floats, or a new one.
    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        pthread_mutex_lock(mutex)
        let p = free[count]?.popLast()
        if p != nil { held -= 4 * max(count, 1) }
        pthread_mutex_unlock(mutex)
        return p ?? Self.allocate(count)
    }

    /// Keeps a buffer of `count` floats for reuse.
    func give(_ pointer: UnsafeMutablePointer<Float>, _ count: Int) {
        pthread_mutex_lock(mutex)
        free[count, default: []].append(pointer)
        held += 4 * max(count, 1)
        pthread_mutex_unlock(mutex)
    }

    /// Bytes of free buffers kept.
    var heldBytes: Int {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return held
    }

    /// Frees the buffers kept (those in use return later and are kept again).
    func release() {
        pthread_mutex_lock(mutex)
        for list in free.values { for p in list { p.deallocate() } }
        free = [:]
        held = 0
        pthread_mutex_unlock(mutex)
    }
}

/// Float vectors (biases, norm gains) converted to f32 at load time and kept for the model's lifetime.
final class VectorArena: @unchecked Sendable {
    private var blocks: [UnsafeMutablePointer<Float>] = []

    func store(count: Int, _ fill: (UnsafeMutablePointer<Float>) -> Void) -> UnsafePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        fill(p)
        blocks.append(p)
        return UnsafePointer(p)
    }

    deinit { for p in blocks { p.deallocate() } }
}
