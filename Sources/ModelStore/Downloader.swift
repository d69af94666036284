// Checked, resumable downloads into a folder with a manifest: HTTP Range on the `.part` file, length and SHA-256
// checked before the atomic rename, the manifest rewritten after each completed file.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where a download stands, reported as bytes arrive.
public struct TransferProgress: Sendable {
    /// The file being fetched (its name in the folder).
    public let file: String
    /// Bytes in the `.part` file so far, including bytes resumed from an earlier attempt.
    public let bytesDone: Int64
    /// The whole file's length, when the server says it.
    public let bytesTotal: Int64?
    /// Bytes resumed from an earlier attempt (not counted in the rate).
    public let resumedFrom: Int64
    /// Seconds since this attempt started.
    public let elapsed: Double

    public init(file: String, bytesDone: Int64, bytesTotal: Int64?, resumedFrom: Int64, elapsed: Double) {
        self.file = file
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.resumedFrom = resumedFrom
        self.elapsed = elapsed
    }

    /// Bytes per second of this attempt.
    public var bytesPerSecond: Double { elapsed > 0 ? Double(bytesDone - resumedFrom) / elapsed : 0 }
    /// Seconds to go at the current rate, when the total is known and the rate positive.
    public var secondsRemaining: Double? {
        guard let bytesTotal, bytesPerSecond > 0 else { return nil }
        return Double(max(bytesTotal - bytesDone, 0)) / bytesPerSecond
    }
}

/// What `Downloader.fetch` did.
public enum FetchOutcome: Equatable, Sendable {
    /// The file was already there and matches its manifest entry (or pin): nothing was fetched.
    case alreadyPresent
    /// The file was already there without a manifest entry: its size and digest were recorded, nothing fetched.
    case recordedExisting
    /// The file was downloaded (`resumedFrom` bytes of it came from an earlier, interrupted attempt).
    case downloaded(bytes: Int64, resumedFrom: Int64)
}

/// Fetches files into one folder and keeps its `manifest.json`.
///
/// A file is written to `<file>.part`, appended to on the next attempt after an interruption (HTTP `Range`),
/// checked (length, then SHA-256 against the pin, else against the manifest's record of an earlier download)
/// and only then renamed to `<file>`; the manifest entry (file, URL, bytes, SHA-256, time) is written after
/// each completed file. A file already present is hashed and compared with its manifest entry: a match is not
/// fetched again, a mismatch is an error unless `force` is set, which fetches it again.
public final class Downloader: @unchecked Sendable {
    /// The folder holding the files and `manifest.json`.
    public let directory: URL
    /// Fetch again files that are present (a mismatching one is otherwise an error), and drop `.part` files.
    public var force = false
    /// Called as bytes arrive (on a background thread).
    public var progress: ((TransferProgress) -> Void)?
    /// Seconds without data after which a transfer counts as interrupted.
    public var idleTimeout: TimeInterval = 60

    public init(directory: URL) {
        self.directory = directory
    }

    /// The `.part` file of `file`.
    public func partialURL(_ file: String) -> URL { directory.appendingPathComponent(file + ".part") }

    /// Makes `file` present in the folder: checks a present copy, else downloads `url` (`http(s)://` or
    /// `file://`). `pin` (size and digest known in advance) takes precedence over the manifest's record.
    @discardableResult
    public func fetch(_ file: String, from url: URL, pin: FilePin? = nil) throws -> FetchOutcome {
        try createDirectory(directory)
        var manifest = try Manifest.load(directory: directory)
        let destination = directory.appendingPathComponent(file)
        let part = partialURL(file)
        let expected: (pin: FilePin, from: String)? = pin.map { ($0, "pinned") } ?? manifest[file].map { ($0.pin, "manifest") }

        if FileManager.default.fileExists(atPath: destination.path), !force {
            let (bytes, sha) = try sha256OfFile(destination.path)
            if let expected {
                guard bytes == expected.pin.bytes, sha == expected.pin.sha256 else {
                    throw ModelStoreError.presentFileMismatch(
                        file: destination.path, expected: "\(expected.pin.bytes) bytes, SHA-256 \(expected.pin.sha256)",
                        actual: "\(bytes) bytes, SHA-256 \(sha)")
                }
                if manifest[file] == nil || manifest[file]!.pin != expected.pin {
                    manifest[file] = ManifestEntry(file: file, url: url.absoluteString, bytes: bytes, sha256: sha)
                    try manifest.save(directory: directory)
                }
                return .alreadyPresent
            }
            manifest[file] = ManifestEntry(file: file, url: url.absoluteString, bytes: bytes, sha256: sha)
            try manifest.save(directory: directory)
            return .recordedExisting
        }
        if force { try? FileManager.default.removeItem(at: part) }

        let resumedFrom = try transfer(url, into: part, file: file, expectedLength: expected.map { ($0.pin.bytes, $0.from) })
        let (bytes, sha) = try sha256OfFile(part.path)
        if let expected {
            guard bytes == expected.pin.bytes else {
                try? FileManager.default.removeItem(at: part)
                throw ModelStoreError.lengthMismatch(file: file, expected: expected.pin.bytes, actual: bytes, expectedFrom: expected.from)
            }
            guard sha == expected.pin.sha256 else {
                try? FileManager.default.removeItem(at: part)
                throw ModelStoreError.digestMismatch(file: file, expected: expected.pin.sha256, actual: sha, expectedFrom: expected.from)
            }
        }
        guard rename(part.path, destination.path) == 0 else {
            throw ModelStoreError.io(path: destination.path, operation: "rename", reason: String(cString: strerror(errno)))
        }
        manifest[file] = ManifestEntry(file: file, url: url.absoluteString, bytes: bytes, sha256: sha)
        try manifest.save(directory: directory)
        return .downloaded(bytes: bytes, resumedFrom: resumedFrom)
    }

    /// Streams `url` into `part` (resuming from its current length), fsyncs it, and returns the resumed length.
    /// Checks the server's length against `expectedLength` before taking the body and against what arrived after.
    private func transfer(_ url: URL, into part: URL, file: String, expectedLength: (Int64, String)?) throws -> Int64 {
        let sink = try PartFile(path: part.path)
        defer { sink.close() }
        for attempt in 0..<2 {
            let offset = sink.length
            let stream = TransferState(file: file, sink: sink, offset: offset, expectedLength: expectedLength, progress: progress)
            if url.isFileURL {
                try copyLocal(url, state: stream)
            } else {
                HTTPTransfer(state: stream, timeout: idleTimeout).run(url)
            }
            if stream.restart && attempt == 0 {   // the server could not continue the part: start over
                try sink.truncate()
                continue
            }
            if let failure = stream.failure {
                var discard = sink.length == 0   // nothing worth resuming
                if case .lengthMismatch = failure { discard = true }
                if discard { try? FileManager.default.removeItem(at: part) }
                throw failure
            }
            let length = sink.length
            if let total = stream.total, length != total {
                if length < total {
                    try sink.sync()
                    throw ModelStoreError.interrupted(url: url.absoluteString, received: length, reason: "the server closed the connection early")
                }
                try? FileManager.default.removeItem(at: part)
                throw ModelStoreError.lengthMismatch(file: file, expected: total, actual: length, expectedFrom: "server")
            }
            try sink.sync()
            return stream.resumedFrom
        }
        throw ModelStoreError.http(url: url.absoluteString, status: 416)
    }

    private func copyLocal(_ url: URL, state: TransferState) throws {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { state.failure = .http(url: url.absoluteString, status: 404); return }
        defer { closeDescriptor(fd) }
        var st = stat()
        fstat(fd, &st)
        let size = Int64(st.st_size)
        if state.offset > size { state.restart = true; return }
        guard state.begin(total: size, resumed: state.offset) else { return }
        lseek(fd, off_t(state.offset), SEEK_SET)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer, 1 << 20)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            guard state.receive(UnsafeRawBufferPointer(start: buffer, count: n)) else { return }
        }
    }
}

private func closeDescriptor(_ fd: Int32) { _ = close(fd) }

private func createDirectory(_ url: URL) throws {
    do {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
        throw ModelStoreError.io(path: url.path, operation: "create folder", reason: error.localizedDescription)
    }
}

/// The `.part` file, opened for appending.
final class PartFile: @unchecked Sendable {
    let path: String
    private var fd: Int32
    private(set) var length: Int64

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ModelStoreError.io(path: path, operation: "open", reason: String(cString: strerror(errno))) }
        length = Int64(lseek(fd, 0, SEEK_END))
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw ModelStoreError.io(path: path, operation: "write", reason: String(cString: strerror(errno)))
            }
            done += n
        }
        length += Int64(bytes.count)
    }

    func truncate() throws {
        guard ftruncate(fd, 0) == 0 else { throw ModelStoreError.io(path: path, operation: "truncate", reason: String(cString: strerror(errno))) }
        lseek(fd, 0, SEEK_SET)
        length = 0
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw ModelStoreError.io(path: path, operation: "fsync", reason: String(cString: strerror(errno))) }
    }

    func close() {
        if fd >= 0 { closeDescriptor(fd); fd = -1 }
    }
}

/// One attempt's bookkeeping, shared by the HTTP and file transports.
final class TransferState: @unchecked Sendable {
    let file: String
    let sink: PartFile
    let offset: Int64
    let expectedLength: (Int64, String)?
    let progress: ((TransferProgress) -> Void)?
    let started = Date()
    var total: Int64?
    var resumedFrom: Int64 = 0
    var failure: ModelStoreError?
    var restart = false

    init(file: String, sink: PartFile, offset: Int64, expectedLength: (Int64, String)?, progress: ((TransferProgress) -> Void)?) {
        self.file = file
        self.sink = sink
        self.offset = offset
        self.expectedLength = expectedLength
        self.progress = progress
    }

    /// The body starts: `total` is the whole file's length if known, `resumed` the bytes kept from the part.
    /// False (with `failure` set) when the server's length is not the expected one.
    func begin(total: Int64?, resumed: Int64) -> Bool {
        self.total = total
        resumedFrom = resumed
        if let total, let (expected, from) = expectedLength, total != expected {
            failure = .lengthMismatch(file: file, expected: expected, actual: total, expectedFrom: from)
            return false
        }
        report()
        return true
    }

    /// Appends body bytes; false (with `failure` set) if the write failed.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        do {
            try sink.append(bytes)
        } catch let error as ModelStoreError {
            failure = error
            return false
        } catch {
            failure = .io(path: sink.path, operation: "write", reason: "\(error)")
            return false
        }
        report()
        return true
    }

    private func report() {
        progress?(TransferProgress(file: file, bytesDone: sink.length, bytesTotal: total, resumedFrom: resumedFrom,
                                   elapsed: Date().timeIntervalSince(started)))
    }
}

/// One HTTP(S) GET (with `Range` when resuming) streamed into a `TransferState`, blocking until done.
private final class HTTPTransfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let state: TransferState
    private let timeout: TimeInterval
    private let finished = DispatchSemaphore(value: 0)

    init(state: TransferState, timeout: TimeInterval) {
        self.state = state
        self.timeout = timeout
    }

    func run(_ url: URL) {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        let session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
        var request = URLRequest(url: url)
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        if state.offset > 0 { request.setValue("bytes=\(state.offset)-", forHTTPHeaderField: "Range") }
        session.dataTask(with: request).resume()
        finished.wait()
        session.finishTasksAndInvalidate()
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let url = response.url?.absoluteString ?? ""
        guard let http = response as? HTTPURLResponse else {
            state.failure = .http(url: url, status: 0)
            completionHandler(.cancel)
            return
        }
        let length: Int64? = response.expectedContentLength >= 0 ? response.expectedContentLength : nil
        switch http.statusCode {
        case 206 where state.offset > 0:
            // Content-Range: bytes START-END/TOTAL; START must be where the part ends.
            let range = (http.value(forHTTPHeaderField: "Content-Range") ?? "").lowercased()
            let parts = range.replacingOccurrences(of: "bytes ", with: "").split(whereSeparator: { $0 == "-" || $0 == "/" })
            guard parts.count == 3, Int64(parts[0]) == state.offset else {
                state.restart = true
                completionHandler(.cancel)
                return
            }
            let ok = state.begin(total: Int64(parts[2]) ?? length.map { $0 + state.offset }, resumed: state.offset)
            completionHandler(ok ? .allow : .cancel)
        case 200:
            if state.offset > 0 {   // the server ignored the range: the body is the whole file
                do { try state.sink.truncate() } catch {
                    state.failure = .io(path: state.sink.path, operation: "truncate", reason: "\(error)")
                    completionHandler(.cancel)
                    return
                }
            }
            completionHandler(state.begin(total: length, resumed: 0) ? .allow : .cancel)
        case 416 where state.offset > 0:
            state.restart = true
            completionHandler(.cancel)
        default:
            state.failure = .http(url: url, status: http.statusCode)
            completionHandler(.cancel)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard state.failure == nil else { return }
        let ok = data.withUnsafeBytes { state.receive($0) }
        if !ok { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let error, state.failure == nil, !state.restart {
            state.failure = .interrupted(url: task.originalRequest?.url?.absoluteString ?? "", received: state.sink.length,
                                         reason: error.localizedDescription)
        }
        finished.signal()
    }
}
