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
/// each buffer from the heap and notes when it is taken and released, and how deep the pass thread's kernel scratch
/// stack goes between two such events; at its end the buffers and those scratch windows are placed in one slab so that
/// what is alive at the same time never shares bytes (largest first, each at the lowest offset free of everything it
/// overlaps in time: the slab is about the pass's peak of activations plus scratch). Later passes (replaying) hand out
/// `slab + offset` in order and lend each window's place to the scratch stack, after checking the size, the order
/// and that everything the place was shared with has been released; any difference falls back to heap allocations
/// for the rest of the pass and records it anew. Heap allocations are counted (`HeapAllocations`).
final class ActivationPool: @unchecked Sendable {
    /// The pool that `Activation(shape:)` takes from on this thread (nil: plain counted allocations).
    @TaskLocal static var current: ActivationPool?

    /// A buffer of a pass (or a scratch window): its size in floats, its lifetime in event times of the recording
    /// pass (`releasedAt` `Int.max`: outlived the pass, so never placed), its offset in the slab, and the earlier
    /// buffers sharing its bytes.
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
    private var entries: [Entry] = []       // recorded (while recording) or planned, in take order
    private var windows: [Entry] = []       // the pass thread's scratch between event `takenAt / 2` and the next
    private var windowAfterEvent: [Int: Int] = [:]
    private var windowsUsable = true        // no event happened with kernel scratch in use, all on the pass thread
    private var passThread = pthread_self()
    private var lent = false
    private var planned = false
    private var slab: ActivationSlab?
    private var slabCount = 0               // floats the plan needs
    private var pass = 0, inPass = false, failed = false
    /// Plans that did not hold; from the second on (passes that differ from each other, e.g. varying shapes) the
    /// pool stops planning and passes allocate as without it.
    private var brokenPlans = 0
    private var taken = 0, events = 0       // event n at time 2n; the window after it at time 2n + 1
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
        let starts = !inPass && brokenPlans < 2
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
        passThread = pthread_self()
        _ = KernelScratch.takePeakBytes()
        if planned {
            released = [Bool](repeating: false, count: entries.count)
            // A slab still used by activations of an earlier pass stays theirs.
            if slab == nil || !isKnownUniquelyReferenced(&slab!) || slab!.count < slabCount {
                slab = nil
                HeapAllocations.trimMallocHeap()
                slab = ActivationSlab(count: slabCount)
            }
            lendWindow()
        } else {
            entries = []; windows = []; windowsUsable = true
            // Kernel scratch straight from the heap while recording (as the windows will be, in the slab): the
            // thread's own block would hold the deepest window beside the activations.
            KernelScratch.releaseOwnBlock()
            lent = KernelScratch.lendNothing()
        }
    }

    private func endPass() {
        if lent { lent = !KernelScratch.endLoan() }
        if !planned { noteWindow() }
        inPass = false
        if failed || (planned && taken != entries.count) {
            if planned { brokenPlans += 1 }
            planned = false   // record the next pass anew
            entries = []; windows = []; slab = nil
        } else if !planned {
            plan()   // the pass's buffers are all back: its heap pages go before the slab takes their place
            if !windows.isEmpty { KernelScratch.releaseOwnBlock() }
            HeapAllocations.trimMallocHeap()
            slab = ActivationSlab(count: slabCount)
            slab!.touchPages()   // its page faults in this pass, not the next
        }
    }

    /// Recording, at an event: the scratch window that ends here (unusable unless on the pass thread, stack empty).
    private func noteWindow() {
        guard windowsUsable, pthread_equal(pthread_self(), passThread) != 0, KernelScratch.depth == 0 else {
            windowsUsable = false
            return
        }
        let bytes = KernelScratch.takePeakBytes()
        if bytes > 0 { windows.append(Entry(count: (bytes + 3) / 4, takenAt: 2 * events + 1, releasedAt: 2 * events + 2)) }
    }

    /// Replaying, after an event: the scratch stack served from the place of the window that starts here.
    private func lendWindow() {
        guard pthread_equal(pthread_self(), passThread) != 0 else { failed = true; return }
        if lent {
            lent = !KernelScratch.endLoan()
            if lent { failed = true; return }   // kernel scratch in use here: the plan does not hold
        }
        guard !failed, let w = windowAfterEvent[events], let slab else { return }
        if windows[w].sharesWith.allSatisfy({ released[$0] }) {
            lent = KernelScratch.lend(UnsafeMutableRawPointer(slab.pointer + windows[w].offset), bytes: 4 * windows[w].count)
        }
        if !lent { failed = true }
    }

    /// A buffer of `count` floats and how to give it back.
    func take(_ count: Int) -> (UnsafeMutablePointer<Float>, Source) {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        guard inPass else { return (Self.allocate(count), .heap) }
        if !planned { noteWindow() }
        events += 1
        let index = taken
        taken += 1
        if !planned {
            entries.append(Entry(count: count, takenAt: 2 * events))
            return (Self.allocate(count), .recorded(pass: pass, index: index))
        }
        defer { lendWindow() }
        guard !failed, index < entries.count, entries[index].count == count, entries[index].takenAt == 2 * events else {
            failed = true
            return (Self.allocate(count), .heap)
        }
        if entries[index].offset < 0 { return (Self.allocate(count), .heap) }   // outlived its recording pass
        if entries[index].sharesWith.allSatisfy({ released[$0] }), let slab {
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
                noteWindow()
                events += 1
                entries[index].releasedAt = 2 * events
            }
            pointer.deallocate()
        case .planned(let p, let index, _):
            if p == pass && inPass && index < released.count {
                released[index] = true
                events += 1
                lendWindow()
            }
        }
    }

    /// Places the recorded buffers and scratch windows in one slab (largest first, lowest offset free of everything
    /// alive at the same time), and notes which earlier buffers each one shares bytes with.
    private func plan() {
        if !windowsUsable { windows = [] }
        // Items: entries 0..<entries.count, then windows.
        var items = entries + windows
        let order = items.indices.filter { items[$0].releasedAt != Int.max }
            .sorted { (items[$0].count, -items[$0].takenAt) > (items[$1].count, -items[$1].takenAt) }
        func size(_ i: Int) -> Int { (items[i].count + 15) / 16 * 16 }   // 64-byte aligned places
        var placed: [Int] = []
        var total = 0
        for i in order {
            let e = items[i]
            let overlapping = placed.filter { items[$0].takenAt < e.releasedAt && e.takenAt < items[$0].releasedAt }
                .sorted { items[$0].offset < items[$1].offset }
            var offset = 0
            for j in overlapping {
                if items[j].offset >= offset + size(i) { break }
                offset = max(offset, items[j].offset + size(j))
            }
            items[i].offset = offset
            total = max(total, offset + size(i))
            placed.append(i)
        }
        // What an item must find released first: the earlier buffers (not windows) sharing its bytes.
        for i in placed {
            let lo = items[i].offset, hi = lo + size(i)
            items[i].sharesWith = placed.filter { j in
                j < entries.count && items[j].takenAt < items[i].takenAt && items[j].offset < hi && lo < items[j].offset + size(j)
            }
        }
        entries = Array(items[0..<entries.count])
        windows = Array(items[entries.count...])
        windowAfterEvent = [:]
        for (w, window) in windows.enumerated() { windowAfterEvent[(window.takenAt - 1) / 2] = w }
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
        HeapAllocations.count(bytes: 4 * self.count)
        // 64-byte aligned: the places lent to the kernels' scratch stack keep its alignment.
        pointer = UnsafeMutableRawPointer.allocate(byteCount: 4 * self.count, alignment: 64)
            .bindMemory(to: Float.self, capacity: self.count)
    }

    /// Writes a zero every 1024 floats (4 KiB), so that the pages are mapped.
    func touchPages() {
        for i in stride(from: 0, to: count, by: 1024) { pointer[i] = 0 }
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
