// Dense float32 tensors for the network's inputs and outputs, and the scratch buffers layers use.

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
/// in the hot loops), or a view of a contiguous part of another one. Freed when the last reference goes.
final class Activation: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    /// [batch, channels, height, width] (or [batch, tokens, width] for the text transformer).
    let shape: [Int]
    /// The activation whose buffer this one views (kept alive by the view), or nil when it owns its buffer.
    private let parent: Activation?

    init(shape: [Int]) {
        self.shape = shape
        count = shape.reduce(1, *)
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
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
    }

    convenience init(shape: [Int], zeroed: Bool) {
        self.init(shape: shape)
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }

    convenience init(_ tensor: FloatTensor) {
        self.init(shape: tensor.shape)
        tensor.values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }

    deinit { if parent == nil { pointer.deallocate() } }

    var batch: Int { shape[0] }
    var channels: Int { shape[1] }
    var height: Int { shape[2] }
    var width: Int { shape[3] }
    var spatial: Int { shape.count == 4 ? shape[2] * shape[3] : shape[2] }

    func tensor() -> FloatTensor {
        FloatTensor(shape: shape, values: Array(UnsafeBufferPointer(start: pointer, count: count)))
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
