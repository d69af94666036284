#if canImport(Glibc)
// A tiny HTTP/1.1 file server on 127.0.0.1 for the download tests: GET with Range, one request per connection,
// and misbehaviours on request (cut the connection mid-file, ignore Range). It serves from memory, listens on
// the loopback interface only, and stops by itself after `lifetime` seconds if a test forgets to stop it.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class LoopbackHTTPServer: @unchecked Sendable {
    /// One request as the server saw it.
    struct Request: Equatable {
        let path: String
        let range: String?
    }

    private let lock = NSLock()
    private var files: [String: Data]
    private var cutOnce: [String: Int] = [:]
    private var ignoreRange = false
    private var log: [Request] = []
    private var stopped = false
    private let listener: Int32
    private let done = DispatchSemaphore(value: 0)
    let port: UInt16

    /// Starts serving `files` (path without the leading slash -> bytes).
    init(files: [String: Data], lifetime: TimeInterval = 30) throws {
        self.files = files
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw CocoaError(.fileWriteUnknown) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else { close(listener); throw CocoaError(.fileWriteUnknown) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
        let deadline = Date().addingTimeInterval(lifetime)
        Thread.detachNewThread { [self] in
            serve(until: deadline)
            done.signal()
        }
    }

    deinit { stop() }

    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Requests served so far.
    var requests: [Request] { lock.withLock { log } }

    /// The next request for `path` gets the headers of the whole file, `bytes` bytes of it, then a closed connection.
    func cutNextRequest(for path: String, after bytes: Int) { lock.withLock { cutOnce[path] = bytes } }

    /// Answer every request with the whole file (status 200), ignoring Range.
    func setIgnoreRange(_ value: Bool) { lock.withLock { ignoreRange = value } }

    func setFile(_ path: String, _ data: Data) { lock.withLock { files[path] = data } }

    /// Stops accepting and waits for the server thread to end.
    func stop() {
        let wasRunning: Bool = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        if wasRunning { done.wait() }
    }

    private func serve(until deadline: Date) {
        defer { close(listener) }
        while Date() < deadline, !lock.withLock({ stopped }) {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            respond(on: connection)
            close(connection)
        }
        lock.withLock { stopped = true }
    }

    private func respond(on connection: Int32) {
        // Read the request head.
        var head = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !head.ends(with: Array("\r\n\r\n".utf8)) && head.count < 65536 {
            let n = recv(connection, &buffer, buffer.count, 0)
            guard n > 0 else { return }
            head += buffer[0..<n]
        }
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let requestLine = lines.first?.split(separator: " ") ?? []
        guard requestLine.count >= 2 else { return }
        let path = String(requestLine[1].dropFirst())
        let range = lines.dropFirst().first { $0.lowercased().hasPrefix("range:") }
            .map { $0.dropFirst("range:".count).trimmingCharacters(in: .whitespaces) }
        let (data, cut, ignore): (Data?, Int?, Bool) = lock.withLock {
            log.append(Request(path: path, range: range))
            let cut = cutOnce.removeValue(forKey: path)
            return (files[path], cut, ignoreRange)
        }
        guard let data else {
            send(connection, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        }
        var start = 0
        var status = "200 OK"
        var extra = ""
        if let range, !ignore, range.hasPrefix("bytes="), range.hasSuffix("-"),
           let from = Int(range.dropFirst("bytes=".count).dropLast()) {
            guard from < data.count else {
                send(connection, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */\(data.count)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            }
            start = from
            status = "206 Partial Content"
            extra = "Content-Range: bytes \(from)-\(data.count - 1)/\(data.count)\r\n"
        }
        let body = data[(data.startIndex + start)...]
        send(connection, "HTTP/1.1 \(status)\r\nContent-Type: application/octet-stream\r\nContent-Length: \(body.count)\r\n"
             + "Accept-Ranges: bytes\r\n\(extra)Connection: close\r\n\r\n")
        let sent = cut.map { min($0, body.count) } ?? body.count
        body.prefix(sent).withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(connection, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                guard n > 0 else { return }
                offset += n
            }
        }
        if cut != nil { shutdown(connection, Int32(SHUT_RDWR)) }
    }

    private func send(_ connection: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = Glibc.send(connection, bytes, bytes.count, Int32(MSG_NOSIGNAL))
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
#endif
