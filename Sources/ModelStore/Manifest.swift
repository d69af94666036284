// The JSON manifest kept beside downloaded and cached files: for each file its source URL, size, SHA-256
// and when it was recorded. Rewritten atomically (temporary file + rename) after each completed file.
import Converter
import Foundation

/// One file's record.
public struct ManifestEntry: Codable, Sendable, Equatable {
    /// File name, relative to the manifest's folder.
    public var file: String
    /// Where it came from (the checkpoint's URL for a converted model).
    public var url: String
    public var bytes: Int64
    /// 64 lowercase hex digits.
    public var sha256: String
    /// When it was recorded (ISO 8601, UTC).
    public var time: String

    public init(file: String, url: String, bytes: Int64, sha256: String, time: Date = Date()) {
        self.file = file
        self.url = url
        self.bytes = bytes
        self.sha256 = sha256.lowercased()
        self.time = ISO8601DateFormatter().string(from: time)
    }

    /// The size and digest as a pin.
    public var pin: FilePin { FilePin(bytes: bytes, sha256: sha256) }
}

/// `manifest.json` in a folder: `{"format": "glide-manifest-1", "files": [...]}`.
public struct Manifest: Sendable, Equatable {
    /// The manifest's file name inside the folder it describes.
    public static let fileName = "manifest.json"
    static let formatName = "glide-manifest-1"

    /// Entries by file name.
    public private(set) var entries: [String: ManifestEntry] = [:]

    public init() {}

    /// The manifest in `directory`, or an empty one when there is none.
    public static func load(directory: URL) throws -> Manifest {
        let url = directory.appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: url.path) else { return Manifest() }
        struct Stored: Decodable { var format: String; var files: [ManifestEntry] }
        let stored: Stored
        do {
            stored = try JSONDecoder().decode(Stored.self, from: data)
        } catch {
            throw ModelStoreError.badManifest(path: url.path, reason: "\(error)")
        }
        guard stored.format == formatName else {
            throw ModelStoreError.badManifest(path: url.path, reason: "format '\(stored.format)', expected '\(formatName)'")
        }
        var m = Manifest()
        for e in stored.files { m.entries[e.file] = e }
        return m
    }

    public subscript(file: String) -> ManifestEntry? {
        get { entries[file] }
        set { entries[file] = newValue }
    }

    /// Writes the manifest to `directory` atomically (a temporary file renamed over the old one).
    public func save(directory: URL) throws {
        struct Stored: Encodable { var format: String; var files: [ManifestEntry] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(Stored(format: Manifest.formatName, files: entries.values.sorted { $0.file < $1.file }))
        let url = directory.appendingPathComponent(Manifest.fileName)
        let temporary = directory.appendingPathComponent(".\(Manifest.fileName).tmp-\(getpid())")
        do {
            try data.write(to: temporary)
            guard rename(temporary.path, url.path) == 0 else {
                throw ModelStoreError.io(path: url.path, operation: "rename", reason: String(cString: strerror(errno)))
            }
        } catch let error as ModelStoreError {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw ModelStoreError.io(path: url.path, operation: "write", reason: error.localizedDescription)
        }
    }
}

/// Size and SHA-256 (64 lowercase hex digits) of the file at `path`, read sequentially.
public func sha256OfFile(_ path: String) throws -> (bytes: Int64, sha256: String) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ModelStoreError.io(path: path, operation: "open", reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    let hasher = FastSHA256()
    let size = 4 << 20
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
    defer { buffer.deallocate() }
    var total: Int64 = 0
    while true {
        let n = read(fd, buffer, size)
        if n < 0 {
            if errno == EINTR { continue }
            throw ModelStoreError.io(path: path, operation: "read", reason: String(cString: strerror(errno)))
        }
        if n == 0 { break }
        hasher.update(UnsafeRawBufferPointer(start: buffer, count: n))
        total += Int64(n)
    }
    return (total, hasher.finalizeHex())
}
