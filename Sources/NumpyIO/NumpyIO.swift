// NumpyIO: NumPy `.npy` read/write (format versions 1.0, 2.0 and 3.0 headers; little-endian
// f32, f64, i64, i32, bool, u8; C order). No dependencies beyond Glibc.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Element types this module reads and writes, with their NumPy `descr` strings.
public enum NpyDType: String, Sendable, CaseIterable {
    /// `<f4`
    case float32 = "<f4"
    /// `<f8`
    case float64 = "<f8"
    /// `<i8`
    case int64 = "<i8"
    /// `<i4`
    case int32 = "<i4"
    /// `|b1` (one byte per element, 0 or 1)
    case bool = "|b1"
    /// `|u1`
    case uint8 = "|u1"

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .float32, .int32: return 4
        case .float64, .int64: return 8
        case .bool, .uint8: return 1
        }
    }

    /// Parses a NumPy `descr` string; `=`/`<` byte orders are accepted for multi-byte types
    /// (this module only runs on little-endian hosts), `|` or `<` or `=` for one-byte types.
    public init?(descr: String) {
        var s = descr
        guard let first = s.first else { return nil }
        if first == "<" || first == "=" || first == "|" { s.removeFirst() } else if first == ">" { return nil }
        switch s {
        case "f4": self = .float32
        case "f8": self = .float64
        case "i8": self = .int64
        case "i4": self = .int32
        case "b1", "?": self = .bool
        case "u1": self = .uint8
        default: return nil
        }
    }
}

/// Everything that can go wrong reading or writing a `.npy` file.
public enum NpyError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened (path, errno text).
    case cannotOpen(path: String, reason: String)
    /// Reading or writing the file failed part way (path, errno text).
    case ioFailed(path: String, reason: String)
    /// The first six bytes are not `\x93NUMPY` (what was found instead, hex).
    case badMagic(found: String)
    /// A format version other than 1.0, 2.0 or 3.0.
    case unsupportedVersion(major: Int, minor: Int)
    /// The header dictionary could not be parsed (why, and the header text).
    case malformedHeader(reason: String, header: String)
    /// A `descr` this module does not handle (big-endian, float16, complex, structured...).
    case unsupportedDType(descr: String)
    /// `fortran_order: True` arrays are not supported.
    case fortranOrder
    /// The data part is shorter than the header promises (bytes expected vs present).
    case truncatedData(expected: Int, actual: Int)
    /// An accessor asked for a different element type than the array holds.
    case typeMismatch(expected: NpyDType, actual: NpyDType)
    /// Element count does not match the shape (shape product vs count given).
    case shapeMismatch(shape: [Int], expectedCount: Int, actualCount: Int)
    /// The shape's element count, or its byte size, does not fit in an `Int` (a hostile or corrupt header).
    case shapeTooLarge(shape: [Int])

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open \(path): \(reason)"
        case let .ioFailed(path, reason): return "I/O error on \(path): \(reason)"
        case let .badMagic(found): return "not a .npy file (magic bytes \(found))"
        case let .unsupportedVersion(major, minor): return "unsupported .npy format version \(major).\(minor)"
        case let .malformedHeader(reason, header): return "malformed .npy header (\(reason)): \(header)"
        case let .unsupportedDType(descr): return "unsupported .npy dtype '\(descr)' (supported: <f4 <f8 <i8 <i4 |b1 |u1)"
        case .fortranOrder: return "Fortran-ordered .npy arrays are not supported"
        case let .truncatedData(expected, actual): return ".npy data truncated: expected \(expected) bytes, found \(actual)"
        case let .typeMismatch(expected, actual): return ".npy array holds \(actual.rawValue), expected \(expected.rawValue)"
        case let .shapeMismatch(shape, expectedCount, actualCount):
            return "shape \(shape) needs \(expectedCount) elements, got \(actualCount)"
        case let .shapeTooLarge(shape): return "shape \(shape) is too large (its size overflows)"
        }
    }
}

/// An n-dimensional array as stored in a `.npy` file: dtype, shape (C order) and the raw little-endian bytes.
public struct NpyArray: Equatable, Sendable {
    /// Element type.
    public var dtype: NpyDType
    /// Dimensions, outermost first; `[]` is a scalar (one element).
    public var shape: [Int]
    /// Raw element bytes, little-endian, C order; `count * dtype.byteWidth` bytes.
    public var bytes: [UInt8]

    /// Number of elements (product of `shape`; 1 for a scalar).
    public var count: Int { shape.reduce(1, *) }

    /// Wraps raw bytes; fails if their length does not match the shape.
    public init(dtype: NpyDType, shape: [Int], bytes: [UInt8]) throws {
        let n = try Npy.byteCount(shape: shape, byteWidth: 1)
        guard bytes.count == (try Npy.byteCount(shape: shape, byteWidth: dtype.byteWidth)) else {
            throw NpyError.shapeMismatch(shape: shape, expectedCount: n, actualCount: bytes.count / dtype.byteWidth)
        }
        self.dtype = dtype; self.shape = shape; self.bytes = bytes
    }

    private init<T>(_ values: [T], dtype: NpyDType, shape: [Int]?) throws {
        let shape = shape ?? [values.count]
        let n = try Npy.byteCount(shape: shape, byteWidth: 1)
        guard n == values.count else {
            throw NpyError.shapeMismatch(shape: shape, expectedCount: n, actualCount: values.count)
        }
        self.dtype = dtype; self.shape = shape
        self.bytes = values.withUnsafeBytes { Array($0) }
    }

    /// A float32 array (`shape` defaults to one dimension of `values.count`).
    public init(float32 values: [Float], shape: [Int]? = nil) throws { try self.init(values, dtype: .float32, shape: shape) }
    /// A float64 array.
    public init(float64 values: [Double], shape: [Int]? = nil) throws { try self.init(values, dtype: .float64, shape: shape) }
    /// An int64 array.
    public init(int64 values: [Int64], shape: [Int]? = nil) throws { try self.init(values, dtype: .int64, shape: shape) }
    /// An int64 array from `Int`s.
    public init(int values: [Int], shape: [Int]? = nil) throws { try self.init(values.map { Int64($0) }, dtype: .int64, shape: shape) }
    /// An int32 array.
    public init(int32 values: [Int32], shape: [Int]? = nil) throws { try self.init(values, dtype: .int32, shape: shape) }
    /// A bool array (stored one byte per element).
    public init(bool values: [Bool], shape: [Int]? = nil) throws { try self.init(values.map { UInt8($0 ? 1 : 0) }, dtype: .bool, shape: shape) }
    /// A uint8 array.
    public init(uint8 values: [UInt8], shape: [Int]? = nil) throws { try self.init(values, dtype: .uint8, shape: shape) }

    private func typed<T>(_ want: NpyDType, as: T.Type) throws -> [T] {
        guard dtype == want else { throw NpyError.typeMismatch(expected: want, actual: dtype) }
        let n = count
        return [T](unsafeUninitializedCapacity: n) { buf, initialized in
            bytes.withUnsafeBytes { raw in
                for i in 0..<n { buf[i] = raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self) }
            }
            initialized = n
        }
    }

    /// The elements of a float32 array; throws `typeMismatch` otherwise.
    public func float32Values() throws -> [Float] { try typed(.float32, as: Float.self) }
    /// The elements of a float64 array; throws `typeMismatch` otherwise.
    public func float64Values() throws -> [Double] { try typed(.float64, as: Double.self) }
    /// The elements of an int64 array; throws `typeMismatch` otherwise.
    public func int64Values() throws -> [Int64] { try typed(.int64, as: Int64.self) }
    /// The elements of an int32 array; throws `typeMismatch` otherwise.
    public func int32Values() throws -> [Int32] { try typed(.int32, as: Int32.self) }
    /// The elements of a uint8 array; throws `typeMismatch` otherwise.
    public func uint8Values() throws -> [UInt8] { try typed(.uint8, as: UInt8.self) }
    /// The elements of a bool array (any non-zero byte is true); throws `typeMismatch` otherwise.
    public func boolValues() throws -> [Bool] {
        guard dtype == .bool else { throw NpyError.typeMismatch(expected: .bool, actual: dtype) }
        return bytes.map { $0 != 0 }
    }

    /// Any floating-point array (f32 or f64) converted to `Float`; throws `typeMismatch` for other types.
    public func floatValues() throws -> [Float] {
        switch dtype {
        case .float32: return try float32Values()
        case .float64: return try float64Values().map { Float($0) }
        default: throw NpyError.typeMismatch(expected: .float32, actual: dtype)
        }
    }

    /// Any integer or bool array (i64, i32, u8, bool) converted to `Int`; throws `typeMismatch` for floats.
    public func intValues() throws -> [Int] {
        switch dtype {
        case .int64: return try int64Values().map { Int($0) }
        case .int32: return try int32Values().map { Int($0) }
        case .uint8: return bytes.map { Int($0) }
        case .bool: return bytes.map { $0 != 0 ? 1 : 0 }
        default: throw NpyError.typeMismatch(expected: .int64, actual: dtype)
        }
    }
}

/// Reading and writing `.npy` files and byte buffers.
public enum Npy {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]   // \x93NUMPY

    /// `product(shape) * byteWidth`, overflow-checked: `NpyError.shapeTooLarge` when it does not fit in an `Int`
    /// (or a dimension is negative).
    static func byteCount(shape: [Int], byteWidth: Int) throws -> Int {
        var n = byteWidth
        for d in shape {
            guard d >= 0 else { throw NpyError.shapeTooLarge(shape: shape) }
            let (m, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow else { throw NpyError.shapeTooLarge(shape: shape) }
            n = m
        }
        return n
    }

    /// Parses a complete `.npy` file image. Extra bytes after the data are ignored.
    public static func decode(_ data: [UInt8]) throws -> NpyArray {
        guard data.count >= 10, Array(data[0..<6]) == magic else {
            throw NpyError.badMagic(found: data.prefix(6).map { hex2($0) }.joined(separator: " "))
        }
        let major = Int(data[6]), minor = Int(data[7])
        var headerLen: Int
        var offset: Int
        switch major {
        case 1:
            headerLen = Int(data[8]) | Int(data[9]) << 8
            offset = 10
        case 2, 3:
            guard data.count >= 12 else { throw NpyError.truncatedData(expected: 12, actual: data.count) }
            headerLen = Int(data[8]) | Int(data[9]) << 8 | Int(data[10]) << 16 | Int(data[11]) << 24
            offset = 12
        default:
            throw NpyError.unsupportedVersion(major: major, minor: minor)
        }
        guard minor == 0 else { throw NpyError.unsupportedVersion(major: major, minor: minor) }
        guard data.count >= offset + headerLen else {
            throw NpyError.truncatedData(expected: offset + headerLen, actual: data.count)
        }
        let header = String(decoding: data[offset..<(offset + headerLen)], as: UTF8.self)
        offset += headerLen
        let (descr, fortran, shape) = try parseHeader(header)
        guard let dtype = NpyDType(descr: descr) else { throw NpyError.unsupportedDType(descr: descr) }
        if fortran && shape.count > 1 { throw NpyError.fortranOrder }
        let need = try byteCount(shape: shape, byteWidth: dtype.byteWidth)
        let have = data.count - offset
        guard have >= need else { throw NpyError.truncatedData(expected: need, actual: have) }
        return try NpyArray(dtype: dtype, shape: shape, bytes: Array(data[offset..<(offset + need)]))
    }

    /// Serialises an array as a `.npy` file image (version 1.0, or 2.0 if the header needs it);
    /// the header is padded with spaces so the data starts at a multiple of 64 bytes.
    public static func encode(_ array: NpyArray) -> [UInt8] {
        let shapeText: String
        switch array.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(array.shape[0]),)"
        default: shapeText = "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var dict = "{'descr': '\(array.dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        var prefixLen = 10
        var major: UInt8 = 1
        if dict.utf8.count + 1 + 10 + 64 > 65535 { prefixLen = 12; major = 2 }
        let unpadded = prefixLen + dict.utf8.count + 1
        let padded = (unpadded + 63) / 64 * 64
        dict += String(repeating: " ", count: padded - unpadded) + "\n"
        let headerLen = dict.utf8.count
        var out = magic + [major, 0]
        if major == 1 {
            out += [UInt8(headerLen & 0xFF), UInt8(headerLen >> 8)]
        } else {
            out += (0..<4).map { UInt8((headerLen >> (8 * $0)) & 0xFF) }
        }
        out += Array(dict.utf8)
        out += array.bytes
        return out
    }

    /// Reads a `.npy` file.
    public static func read(path: String) throws -> NpyArray {
        try decode(readFile(path))
    }

    /// Writes a `.npy` file (replacing it).
    public static func write(_ array: NpyArray, path: String) throws {
        guard let f = fopen(path, "wb") else { throw NpyError.cannotOpen(path: path, reason: errnoText()) }
        defer { fclose(f) }
        let bytes = encode(array)
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        guard written == bytes.count, fflush(f) == 0 else { throw NpyError.ioFailed(path: path, reason: errnoText()) }
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw NpyError.cannotOpen(path: path, reason: errnoText()) }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { out.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(f) != 0 { throw NpyError.ioFailed(path: path, reason: errnoText()) }
                break
            }
        }
        return out
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    static func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }

    // Parses the Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
    static func parseHeader(_ header: String) throws -> (String, Bool, [Int]) {
        let chars = Array(header.unicodeScalars)
        var i = 0
        func fail(_ why: String) -> NpyError { .malformedHeader(reason: why, header: header) }
        func skipSpace() { while i < chars.count, chars[i] == " " || chars[i] == "\n" || chars[i] == "\t" || chars[i] == "\r" { i += 1 } }
        func expect(_ c: Unicode.Scalar) throws {
            skipSpace()
            guard i < chars.count, chars[i] == c else { throw fail("expected '\(c)'") }
            i += 1
        }
        func quoted() throws -> String {
            skipSpace()
            guard i < chars.count, chars[i] == "'" || chars[i] == "\"" else { throw fail("expected a quoted string") }
            let q = chars[i]; i += 1
            var s = String.UnicodeScalarView()
            while i < chars.count, chars[i] != q { s.append(chars[i]); i += 1 }
            guard i < chars.count else { throw fail("unterminated string") }
            i += 1
            return String(s)
        }
        func word() -> String {
            skipSpace()
            var s = ""
            while i < chars.count, chars[i].properties.isAlphabetic || ("0"..."9").contains(chars[i]) || chars[i] == "_" {
                s.unicodeScalars.append(chars[i]); i += 1
            }
            return s
        }
        var descr: String?
        var fortran: Bool?
        var shape: [Int]?
        try expect("{")
        while true {
            skipSpace()
            if i < chars.count, chars[i] == "}" { i += 1; break }
            let key = try quoted()
            try expect(":")
            switch key {
            case "descr": descr = try quoted()
            case "fortran_order":
                switch word() {
                case "True": fortran = true
                case "False": fortran = false
                default: throw fail("fortran_order is not True/False")
                }
            case "shape":
                try expect("(")
                var dims: [Int] = []
                while true {
                    skipSpace()
                    if i < chars.count, chars[i] == ")" { i += 1; break }
                    var w = word()
                    if w.hasSuffix("L") { w.removeLast() }
                    guard let d = Int(w), d >= 0 else { throw fail("bad shape dimension '\(w)'") }
                    dims.append(d)
                    skipSpace()
                    if i < chars.count, chars[i] == "," { i += 1 }
                }
                shape = dims
            default:
                throw fail("unknown key '\(key)'")
            }
            skipSpace()
            if i < chars.count, chars[i] == "," { i += 1 }
        }
        guard let d = descr else { throw fail("missing 'descr'") }
        guard let f = fortran else { throw fail("missing 'fortran_order'") }
        guard let s = shape else { throw fail("missing 'shape'") }
        return (d, f, s)
    }
}
