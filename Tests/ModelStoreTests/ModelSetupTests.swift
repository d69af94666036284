// `setup` end to end against the loopback server: a tiny GLIDE UNet served as base.pt with the tiny tokenizer,
// downloaded, converted with the tokenizer embedded, verified, installed; a second run does nothing.
#if canImport(Glibc)
import Foundation
import XCTest
import TestSupport
import WeightFormat
@testable import ModelStore

final class ModelSetupTests: XCTestCase {
    private var server: LoopbackHTTPServer!
    private var cacheFolder: URL!

    override func setUpWithError() throws {
        let fixtures = TestPaths.fixture("pipeline/tiny-tokenizer")
        server = try LoopbackHTTPServer(files: [
            "base.pt": try Data(contentsOf: TestPaths.fixture("weightformat/tiny_unet.pt")),
            "encoder.json.gz": try Data(contentsOf: fixtures.appendingPathComponent("tiny-encoder.json.gz")),
            "vocab.bpe.gz": try Data(contentsOf: fixtures.appendingPathComponent("tiny-vocab.bpe.gz")),
        ])
        cacheFolder = FileManager.default.temporaryDirectory.appendingPathComponent("glide-cache-\(UUID().uuidString)")
    }

    override func tearDown() {
        server.stop()
        try? FileManager.default.removeItem(at: cacheFolder)
    }

    private func setup(keep: Bool = false) -> ModelSetup {
        var options = SetupOptions()
        options.mirror = server.baseURL
        options.keepCheckpoints = keep
        options.configs = ["base": TestPaths.fixture("weightformat/tiny_unet_options.json").path]
        return ModelSetup(cache: ModelCache(directory: cacheFolder), options: options)
    }

    func testInstallsThenDoesNothingTheSecondTime() throws {
        let base = try XCTUnwrap(ReleasedModel.named("base"))
        let first = try setup().install([base])
        XCTAssertEqual(first.map(\.action), [.installed])
        let installed = cacheFolder.appendingPathComponent("base-int8.glw")
        XCTAssertEqual(first[0].url, installed)

        // Converted with the tokenizer embedded; verified; recorded; the checkpoint deleted, its digest kept.
        let file = try WeightFile(path: installed.path)
        XCTAssertEqual(Set(file.embeddedFiles.map(\.name)), ["tokenizer/encoder.json.gz", "tokenizer/vocab.bpe.gz"])
        XCTAssertEqual(try Manifest.load(directory: cacheFolder)["base-int8.glw"]?.sha256, try sha256OfFile(installed.path).sha256)
        XCTAssertEqual(try Manifest.load(directory: cacheFolder)["base-int8.glw"]?.url, server.baseURL.appendingPathComponent("base.pt").absoluteString)
        let downloads = cacheFolder.appendingPathComponent("downloads")
        XCTAssertFalse(FileManager.default.fileExists(atPath: downloads.appendingPathComponent("base.pt").path))
        XCTAssertNotNil(try Manifest.load(directory: downloads)["base.pt"])
        XCTAssertEqual(try ModelCache(directory: cacheFolder).locate("base"), installed)
        XCTAssertEqual(try ModelCache(directory: cacheFolder).models().map { "\($0.model) \($0.type)" }, ["base int8"])

        let requests = server.requests.count
        XCTAssertEqual(requests, 3, "two tokenizer files and the checkpoint")
        let second = try setup().install([base])
        XCTAssertEqual(second.map(\.action), [.alreadyInstalled])
        XCTAssertEqual(second[0].sha256, first[0].sha256)
        XCTAssertEqual(server.requests.count, requests, "nothing fetched the second time")
    }

    func testKeepCheckpoints() throws {
        _ = try setup(keep: true).install([ReleasedModel.named("base")!])
        XCTAssertTrue(FileManager.default.fileExists(atPath: cacheFolder.appendingPathComponent("downloads/base.pt").path))
    }

    func testChangedInstalledModelIsReported() throws {
        let base = ReleasedModel.named("base")!
        _ = try setup().install([base])
        let installed = cacheFolder.appendingPathComponent("base-int8.glw")
        let handle = try FileHandle(forWritingTo: installed)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([1]))
        try handle.close()
        XCTAssertThrowsError(try setup().install([base])) { error in
            guard case ModelStoreError.presentFileMismatch? = error as? ModelStoreError else { return XCTFail("\(error)") }
        }
        var forced = setup(keep: false)
        forced.options.force = true
        XCTAssertEqual(try forced.install([base]).map(\.action), [.installed])
    }
}
#endif

final class ModelCacheTests: XCTestCase {
    func testDefaultDirectory() {
        XCTAssertEqual(ModelCache.defaultDirectory(environment: ["GLIDE_HOME": "/g", "XDG_CACHE_HOME": "/x", "HOME": "/h"]).path, "/g")
        XCTAssertEqual(ModelCache.defaultDirectory(environment: ["GLIDE_HOME": "", "XDG_CACHE_HOME": "/x", "HOME": "/h"]).path, "/x/glide")
        XCTAssertEqual(ModelCache.defaultDirectory(environment: ["HOME": "/h"]).path, "/h/.cache/glide")
    }

    func testNamesAndLookup() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glide-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = ModelCache(directory: dir)
        XCTAssertEqual(try ModelCache.parseName("clip/image-enc-f16").model.name, "clip/image-enc")
        XCTAssertEqual(try ModelCache.parseName("clip/image-enc-f16").type, "f16")
        XCTAssertEqual(try ModelCache.parseName("upsample-inpaint").model.name, "upsample-inpaint")
        XCTAssertNil(try ModelCache.parseName("upsample-inpaint").type)
        XCTAssertThrowsError(try ModelCache.parseName("huge")) { error in
            guard case ModelStoreError.unknownModel("huge", _)? = error as? ModelStoreError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try cache.locate("base")) { error in
            XCTAssertEqual(error as? ModelStoreError, .notInCache(model: "base", type: nil, directory: dir.path))
        }
        try Data().write(to: dir.appendingPathComponent("base-f32.glw"))
        try Data().write(to: dir.appendingPathComponent("base-bf16.glw"))
        try Data().write(to: dir.appendingPathComponent("clip-text-enc-f16.glw"))
        XCTAssertEqual(try cache.locate("base").lastPathComponent, "base-bf16.glw", "int8, then bf16, f16, f32")
        XCTAssertEqual(try cache.locate("base-f32").lastPathComponent, "base-f32.glw")
        XCTAssertEqual(try cache.locate("clip/text-enc").lastPathComponent, "clip-text-enc-f16.glw")
        XCTAssertThrowsError(try cache.locate("base-int8")) { error in
            XCTAssertEqual(error as? ModelStoreError, .notInCache(model: "base", type: "int8", directory: dir.path))
        }
        XCTAssertEqual(try cache.models().map(\.url.lastPathComponent), ["base-bf16.glw", "base-f32.glw", "clip-text-enc-f16.glw"])
    }
}
