// Errors raised while building or running the GLIDE networks from a weight file.

/// Why a network could not be loaded from a weight file or run on the given inputs.
public enum NetworkError: Error, Equatable, CustomStringConvertible {
    /// The network needs a tensor the file does not have.
    case missingTensor(name: String, expectedShape: [Int])
    /// The file has a tensor with the right name but the wrong shape.
    case tensorShapeMismatch(name: String, expected: [Int], actual: [Int])
    /// The file has a tensor the network has no place for.
    case unexpectedTensor(name: String, shape: [Int])
    /// A tensor is stored in a dtype this layer cannot use (e.g. an int8 norm gain or an i64 weight).
    case unsupportedTensorDType(name: String, expected: String, actual: String)
    /// A hyperparameter is absent, has the wrong type, or holds an impossible value.
    case invalidHyperparameter(name: String, expected: String, actual: String)
    /// A forward input (named with the reference's keyword) is absent, misshapen or inconsistent.
    case invalidInput(name: String, expected: String, actual: String)

    public var description: String {
        switch self {
        case let .missingTensor(name, shape):
            return "missing tensor '\(name)' (expected shape \(shape))"
        case let .tensorShapeMismatch(name, expected, actual):
            return "tensor '\(name)' has shape \(actual), expected \(expected)"
        case let .unexpectedTensor(name, shape):
            return "unexpected tensor '\(name)' with shape \(shape): the model has no place for it"
        case let .unsupportedTensorDType(name, expected, actual):
            return "tensor '\(name)' is \(actual), expected \(expected)"
        case let .invalidHyperparameter(name, expected, actual):
            return "hyperparameter '\(name)': expected \(expected), got \(actual)"
        case let .invalidInput(name, expected, actual):
            return "input '\(name)': expected \(expected), got \(actual)"
        }
    }
}
