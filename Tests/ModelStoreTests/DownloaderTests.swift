// Downloads against a loopback HTTP server started by the test (127.0.0.1 only, no internet): clean, resumed,
// cut mid-file, wrong length, digest mismatch against a pinned manifest, a second run that fetches nothing.
#if canImport(Glibc)
import Foundation
import XCTest
@testable import ModelStore

final class DownloaderTests: XCTestCase {
    private var server: LoopbackHTTPServer!
    private var folder: URL!
    private let payload = Data((0..<300_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) })
    private var payloadSHA: String { try! sha256(payload) }

    override func setUpWithError() throws {
        server = try LoopbackHTTPServer(files: ["base.pt": payload, "small.bin": Data("hello".utf8)])
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("glide-dl-\(UUID().uuidString)")
    }

    override func tearDown() {
        server.stop()
        try? FileManager.default.removeItem(at: folder)
    }

    private func sha256(_ data: Data) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("glide-sha-\(UUID().uuidString)")
        try data.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        return try sha256OfFile(file.path).sha256
    }

    private var url: URL { server.baseURL.appendingPathComponent("base.pt") }
    private var destination: URL { folder.appendingPathComponent("base.pt") }
    private func contents() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted() }

    func testCleanDownloadWritesFileAndManifest() throws {
        let downloader = Downloader(directory: folder)
        let seen = LockedList<TransferProgress>()
        downloader.progress = { seen.append($0) }
        XCTAssertEqual(try downloader.fetch("base.pt", from: url), .downloaded(bytes: Int64(payload.count), resumedFrom: 0))
        XCTAssertEqual(try Data(contentsOf: destination), payload)
        XCTAssertEqual(contents(), ["base.pt", "manifest.json"])
        let entry = try XCTUnwrap(try Manifest.load(directory: folder)["base.pt"])
        XCTAssertEqual(entry.bytes, Int64(payload.count))
        XCTAssertEqual(entry.sha256, payloadSHA)
        XCTAssertEqual(entry.url, url.absoluteString)
        XCTAssertFalse(entry.time.isEmpty)
        // Progress: bytes, the total from the server, rate.
        let last = try XCTUnwrap(seen.items.last)
        XCTAssertEqual(last.bytesDone, Int64(payload.count))
        XCTAssertEqual(last.bytesTotal, Int64(payload.count))
        XCTAssertGreaterThan(last.bytesPerSecond, 0)
        XCTAssertEqual(last.secondsRemaining ?? -1, 0, accuracy: 1e-9)
    }

    func testSecondRunFetchesNothing() throws {
        let downloader = Downloader(directory: folder)
        try downloader.fetch("base.pt", from: url)
        let before = server.requests.count
        XCTAssertEqual(try downloader.fetch("base.pt", from: url), .alreadyPresent)
        XCTAssertEqual(server.requests.count, before)
    }

    func testResumesFromPartFileWithRange() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let kept = 123_457
        try payload.prefix(kept).write(to: folder.appendingPathComponent("base.pt.part"))
        let outcome = try Downloader(directory: folder).fetch("base.pt", from: url)
        XCTAssertEqual(outcome, .downloaded(bytes: Int64(payload.count), resumedFrom: Int64(kept)))
        XCTAssertEqual(server.requests.last?.range, "bytes=\(kept)-")
        XCTAssertEqual(try Data(contentsOf: destination), payload)
        XCTAssertEqual(contents(), ["base.pt", "manifest.json"])
    }

    func testServerIgnoringRangeStartsOver() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(repeating: 0xEE, count: 5000).write(to: folder.appendingPathComponent("base.pt.part"))
        server.setIgnoreRange(true)
        XCTAssertEqual(try Downloader(directory: folder).fetch("base.pt", from: url), .downloaded(bytes: Int64(payload.count), resumedFrom: 0))
        XCTAssertEqual(try Data(contentsOf: destination), payload)
    }

    func testConnectionCutMidFileKeepsPartThenResumes() throws {
        server.cutNextRequest(for: "base.pt", after: 100_000)
        let downloader = Downloader(directory: folder)
        XCTAssertThrowsError(try downloader.fetch("base.pt", from: url)) { error in
            guard case ModelStoreError.interrupted(_, let received, _)? = error as? ModelStoreError else {
                return XCTFail("expected interrupted, got \(error)")
            }
            XCTAssertEqual(received, 100_000)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: destination.path), "nothing renamed into place")
        let part = folder.appendingPathComponent("base.pt.part")
        XCTAssertEqual(try Data(contentsOf: part), payload.prefix(100_000))

        XCTAssertEqual(try downloader.fetch("base.pt", from: url), .downloaded(bytes: Int64(payload.count), resumedFrom: 100_000))
        XCTAssertEqual(server.requests.last?.range, "bytes=100000-")
        XCTAssertEqual(try Data(contentsOf: destination), payload)
    }

    func testWrongLengthIsRefusedBeforeInstalling() throws {
        let pin = FilePin(bytes: Int64(payload.count + 1), sha256: payloadSHA)
        XCTAssertThrowsError(try Downloader(directory: folder).fetch("base.pt", from: url, pin: pin)) { error in
            XCTAssertEqual(error as? ModelStoreError, .lengthMismatch(file: "base.pt", expected: Int64(payload.count + 1),
                                                                      actual: Int64(payload.count), expectedFrom: "pinned"))
        }
        XCTAssertEqual(contents(), [])
    }

    func testDigestMismatchAgainstPinnedManifest() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var manifest = Manifest()
        let wrong = String(repeating: "ab", count: 32)
        manifest["base.pt"] = ManifestEntry(file: "base.pt", url: url.absoluteString, bytes: Int64(payload.count), sha256: wrong)
        try manifest.save(directory: folder)
        XCTAssertThrowsError(try Downloader(directory: folder).fetch("base.pt", from: url)) { error in
            XCTAssertEqual(error as? ModelStoreError, .digestMismatch(file: "base.pt", expected: wrong, actual: payloadSHA, expectedFrom: "manifest"))
        }
        XCTAssertEqual(contents(), ["manifest.json"], "the downloaded bytes are discarded, nothing installed")
        XCTAssertEqual(try Manifest.load(directory: folder), manifest, "the record is not overwritten")
    }

    func testPinTakesPrecedenceAndMatches() throws {
        let pin = FilePin(bytes: Int64(payload.count), sha256: payloadSHA.uppercased())
        XCTAssertEqual(try Downloader(directory: folder).fetch("base.pt", from: url, pin: pin),
                       .downloaded(bytes: Int64(payload.count), resumedFrom: 0))
        let bad = FilePin(bytes: 5, sha256: String(repeating: "0", count: 64))
        let small = server.baseURL.appendingPathComponent("small.bin")
        XCTAssertThrowsError(try Downloader(directory: folder).fetch("small.bin", from: small, pin: bad)) { error in
            guard case ModelStoreError.digestMismatch(_, _, _, "pinned")? = error as? ModelStoreError else { return XCTFail("\(error)") }
        }
    }

    func testChangedFileIsReportedAndRefetchedWithForce() throws {
        let downloader = Downloader(directory: folder)
        try downloader.fetch("base.pt", from: url)
        var damaged = payload
        damaged[1000] ^= 1
        try damaged.write(to: destination)
        XCTAssertThrowsError(try downloader.fetch("base.pt", from: url)) { error in
            guard case ModelStoreError.presentFileMismatch? = error as? ModelStoreError else { return XCTFail("\(error)") }
        }
        downloader.force = true
        XCTAssertEqual(try downloader.fetch("base.pt", from: url), .downloaded(bytes: Int64(payload.count), resumedFrom: 0))
        XCTAssertEqual(try Data(contentsOf: destination), payload)
    }

    func testExistingFileWithoutManifestIsRecorded() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try payload.write(to: destination)
        XCTAssertEqual(try Downloader(directory: folder).fetch("base.pt", from: url), .recordedExisting)
        XCTAssertEqual(try Manifest.load(directory: folder)["base.pt"]?.sha256, payloadSHA)
        XCTAssertTrue(server.requests.isEmpty)
    }

    func testHTTPErrorStatus() {
        XCTAssertThrowsError(try Downloader(directory: folder).fetch("missing.pt", from: server.baseURL.appendingPathComponent("missing.pt"))) { error in
            XCTAssertEqual(error as? ModelStoreError, .http(url: server.baseURL.appendingPathComponent("missing.pt").absoluteString, status: 404))
        }
    }

    func testFileURLMirror() throws {
        let mirror = FileManager.default.temporaryDirectory.appendingPathComponent("glide-mirror-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: mirror, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: mirror) }
        try payload.write(to: mirror.appendingPathComponent("base.pt"))
        XCTAssertEqual(try Downloader(directory: folder).fetch("base.pt", from: mirror.appendingPathComponent("base.pt")),
                       .downloaded(bytes: Int64(payload.count), resumedFrom: 0))
        XCTAssertEqual(try Data(contentsOf: destination), payload)
    }

    func testBadManifestIsReported() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("{\"format\": \"other\", \"files\": []}".utf8).write(to: folder.appendingPathComponent("manifest.json"))
        XCTAssertThrowsError(try Downloader(directory: folder).fetch("base.pt", from: url)) { error in
            guard case ModelStoreError.badManifest? = error as? ModelStoreError else { return XCTFail("\(error)") }
        }
    }
}

/// A list appended to from the download's callback thread.
final class LockedList<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [T] = []
    func append(_ item: T) { lock.withLock { storage.append(item) } }
    var items: [T] { lock.withLock { storage } }
}
#endif
