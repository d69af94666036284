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
    private let source: ActivationPool.Source

    init(shape: [Int]) {
        self.shape = shape
        count = shape.reduce(1, *)
        pool = ActivationPool.current
        (pointer, source) = pool?.take(count) ?? (ActivationPool.allocate(count), .heap)
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
        source = .heap
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
        if let pool { pool.give(pointer, source) } else { pointer.deallocate() }
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

/// The activation buffers of a model's forward passes, planned once and reused by every later pass.
///
/// A forward pass asks for the same sizes in the same order at every step. The first pass (recording) allocates
/// each buffer from the heap and notes when it is taken and released; at its end the buffers are placed in one slab
/// so that buffers alive at the same time never share bytes (largest first, each at the lowest free offset among
/// those it overlaps in time: the slab is about the pass's peak of live activations). Later passes (replaying) hand
/// out `slab + offset` in order, after checking the size and that every earlier buffer the place was shared with
/// has been released; any difference falls back to heap allocations for the rest of the pass and records it anew.
/// Heap allocations are counted (`HeapAllocations`).
final class ActivationPool: @unchecked Sendable {
    /// The pool that `Activation(shape:)` takes from on this thread (nil: plain counted allocations).
    @TaskLocal static var current: ActivationPool?

    /// One buffer of a pass: its size (floats), when it was taken and released (event numbers of the recording
    /// pass; `Int.max`: outlived the pass, so never placed), its offset in the slab, and the earlier buffers sharing
    /// its bytes.
    private struct Entry {
        var count: Int, takenAt: Int, releasedAt = Int.max
        var offset = -1
        var sharesWith: [Int] = []
    }

    /// How an activation's buffer goes back.
    enum Source {
        /// Heap, noted as entry `index` of recording pass `pass`.
        case recorded(pass: Int, index: Int)
        /// `slab` (kept alive by the activation), entry `index` of replaying pass `pass`.
        case planned(pass: Int, index: Int, slab: ActivationSlab)
        /// Heap, not noted.
        case heap
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var entries: [Entry] = []       // recorded (while recording) or planned
    private var planned = false
    private var slab: ActivationSlab?
    private var slabCount = 0               // floats the plan needs
    private var pass = 0, inPass = false, failed = false
    private var taken = 0, events = 0
    private var released: [Bool] = []       // by entry, in the replaying pass

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// A counted heap allocation of `count` floats (at least one).
    static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        HeapAllocations.count(bytes: 4 * max(count, 1))
        return UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    }

    /// Runs `body` as one pass with this pool as `current` (a pass already running on the pool: plain allocations).
    func withPass<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        let starts = !inPass
        if starts { beginPass() }
        pthread_mutex_unlock(mutex)
        if !starts { return try ActivationPool.$current.withValue(nil) { try body() } }
        defer {
            pthread_mutex_lock(mutex)
            endPass()
            pthread_mutex_unlock(mutex)
        }
        return try ActivationPool.$current.withValue(self) { try body() }
    }

    private func beginPass() {
        inPass = true
        pass += 1
        taken = 0; events = 0; failed = false
        if planned {
            released = [Bool](repeating: false, count: entries.count)
            // A slab still used by activations of an earlier pass stays theirs.
            if slab == nil || !isKnownUniquelyReferenced(&slab!) || slab!.count < slabCount {
                slab = nil
                HeapAllocations.trimMallocHeap()
                slab = ActivationSlab(count: slabCount)
            }
        } else {
            entries = []
        }
    }

    private func endPass() {
        inPass = false
        if failed || (planned && taken != entries.count) {
            planned = false   // record the next pass anew
            entries = []
        } else if !planned {
            plan()   // the pass's buffers are all back: its heap pages go before the slab takes its place
            HeapAllocations.trimMallocHeap()
            slab = ActivationSlab(count: slabCount)
        }
    }

    /// A buffer of `count` floats and how to give it back.
    func take(_ count: Int) -> (UnsafeMutablePointer<Float>, Source) {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        guard inPass else { return (Self.allocate(count), .heap) }
        events += 1
        let index = taken
        taken += 1
        if !planned {
            entries.append(Entry(count: count, takenAt: events))
            return (Self.allocate(count), .recorded(pass: pass, index: index))
        }
        if !failed, index < entries.count, entries[index].count == count, entries[index].offset < 0 {
            return (Self.allocate(count), .heap)   // outlived its recording pass: not in the slab
        }
        if !failed, index < entries.count, entries[index].count == count, entries[index].offset >= 0,
           entries[index].sharesWith.allSatisfy({ released[$0] }), let slab {
            return (slab.pointer + entries[index].offset, .planned(pass: pass, index: index, slab: slab))
        }
        failed = true
        return (Self.allocate(count), .heap)
    }

    /// Gives back a buffer from `take`.
    func give(_ pointer: UnsafeMutablePointer<Float>, _ source: Source) {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        switch source {
        case .heap:
            pointer.deallocate()
        case .recorded(let p, let index):
            if p == pass && inPass && !planned && index < entries.count {
                events += 1
                entries[index].releasedAt = events
            }
            pointer.deallocate()
        case .planned(let p, let index, _):
            if p == pass && index < released.count { released[index] = true }
        }
    }

    /// Places the recorded buffers in one slab (largest first, lowest offset free of every buffer alive at the same
    /// time), and notes which earlier buffers each one shares bytes with.
    private func plan() {
        let order = entries.indices.filter { entries[$0].releasedAt != Int.max }
            .sorted { (entries[$0].count, -entries[$0].takenAt) > (entries[$1].count, -entries[$1].takenAt) }
        var placed: [Int] = []
        var total = 0
        for i in order {
            let size = (entries[i].count + 15) / 16 * 16   // 64-byte aligned places
            let e = entries[i]
            let overlapping = placed.filter { entries[$0].takenAt < e.releasedAt && e.takenAt < entries[$0].releasedAt }
                .sorted { entries[$0].offset < entries[$1].offset }
            var offset = 0
            for j in overlapping {
                if entries[j].offset >= offset + size { break }
                offset = max(offset, entries[j].offset + (entries[j].count + 15) / 16 * 16)
            }
            entries[i].offset = offset
            total = max(total, offset + size)
            placed.append(i)
        }
        for i in placed {
            let lo = entries[i].offset, hi = lo + entries[i].count
            entries[i].sharesWith = placed.filter { j in
                entries[j].takenAt < entries[i].takenAt && entries[j].offset < hi && lo < entries[j].offset + entries[j].count
            }
        }
        slabCount = total
        planned = true
        slab = nil
    }

    /// Bytes of the slab kept for the next pass.
    var heldBytes: Int {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return slab.map { 4 * $0.count } ?? 0
    }

    /// Frees the slab (a pass planned already allocates it again); buffers in use keep theirs.
    func release() {
        pthread_mutex_lock(mutex)
        slab = nil
        pthread_mutex_unlock(mutex)
    }
}

/// One heap block of activation buffers (`ActivationPool`), freed when the pool and the last activation in it let go.
final class ActivationSlab: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = max(count, 1)
        pointer = ActivationPool.allocate(self.count)
    }

    deinit { pointer.deallocate() }
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
