// `setup`: download, convert (tokenizer embedded), verify and install released models into the cache.
import Converter
import Foundation
import WeightFormat

/// Settings of `ModelSetup`.
public struct SetupOptions {
    /// Storage type of the converted models: int8, bf16, f16 or f32.
    public var type: WeightDType = .int8
    /// Keep the downloaded checkpoints (they are deleted once the model is installed otherwise).
    public var keepCheckpoints = false
    /// A host serving the same file names as the bucket, flat: `<mirror>/base.pt`, ..., and the tokenizer
    /// files `<mirror>/encoder.json.gz`, `<mirror>/vocab.bpe.gz`, `<mirror>/bpe_simple_vocab_16e6.txt.gz`.
    public var mirror: URL? = nil
    /// Fetch present downloads again and reinstall models that are already set up.
    public var force = false
    /// Options files (the reference's option names, JSON) for checkpoints that are not the released ones, by
    /// model name; such a model is installed under the released name it was asked for.
    public var configs: [String: String] = [:]
    /// Download progress.
    public var downloadProgress: ((TransferProgress) -> Void)? = nil
    /// Conversion and verification progress: (phase, done, total).
    public var conversionProgress: ((String, Int, Int) -> Void)? = nil
    /// One line per step taken ("downloading base.pt", "converting ...", ...).
    public var log: (String) -> Void = { _ in }
    /// Conversion warnings.
    public var warn: (String) -> Void = { _ in }

    public init() {}
}

/// What `ModelSetup.install` did for one model.
public struct SetupResult: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// The model was already installed and matches the cache's manifest: nothing was done.
        case alreadyInstalled
        /// Downloaded (as needed), converted, verified and installed.
        case installed
    }
    public let model: String
    public let url: URL
    public let bytes: Int64
    public let sha256: String
    public let action: Action
}

/// Installs released models into a `ModelCache`.
public struct ModelSetup {
    public let cache: ModelCache
    public var options: SetupOptions

    public init(cache: ModelCache, options: SetupOptions) {
        self.cache = cache
        self.options = options
    }

    /// Installs each model in turn (download, convert with the tokenizer embedded, verify, record in the cache's
    /// manifest, delete the checkpoint unless kept). A model already installed and matching its manifest
    /// entry is left alone.
    public func install(_ models: [ReleasedModel]) throws -> [SetupResult] {
        try FileManager.default.createDirectory(at: cache.directory, withIntermediateDirectories: true)
        return try models.map(install)
    }

    private func install(_ model: ReleasedModel) throws -> SetupResult {
        let type = options.type.description
        let destination = cache.url(for: model, type: type)
        var manifest = try Manifest.load(directory: cache.directory)
        let name = destination.lastPathComponent
        if !options.force, let entry = manifest[name], FileManager.default.fileExists(atPath: destination.path) {
            let (bytes, sha) = try sha256OfFile(destination.path)
            guard bytes == entry.bytes, sha == entry.sha256 else {
                throw ModelStoreError.presentFileMismatch(file: destination.path, expected: "\(entry.bytes) bytes, SHA-256 \(entry.sha256)",
                                                          actual: "\(bytes) bytes, SHA-256 \(sha)")
            }
            return SetupResult(model: model.name, url: destination, bytes: bytes, sha256: sha, action: .alreadyInstalled)
        }

        let downloads = Downloader(directory: cache.downloadsDirectory)
        downloads.force = options.force
        downloads.progress = options.downloadProgress
        for file in model.tokenizerFiles {
            try fetch(downloads, file, ReleasedModel.tokenizerURL(file, mirror: options.mirror))
        }
        let checkpointURL = model.checkpointURL(mirror: options.mirror)
        try fetch(downloads, model.checkpointFile, checkpointURL)

        let checkpoint = cache.downloadsDirectory.appendingPathComponent(model.checkpointFile)
        options.log("converting \(model.checkpointFile) to \(type) and verifying it")
        var conversion = ConversionOptions()
        conversion.target = options.type
        conversion.tokenizerDirectory = cache.downloadsDirectory.path
        conversion.configPath = options.configs[model.name]
        conversion.overwrite = true
        conversion.progress = options.conversionProgress
        conversion.warn = options.warn
        _ = try convertAndVerify(source: checkpoint.path, destination: destination.path, options: conversion,
                                 expectedModel: model.name, progress: options.conversionProgress)
        let (bytes, sha) = try sha256OfFile(destination.path)
        manifest = try Manifest.load(directory: cache.directory)
        manifest[name] = ManifestEntry(file: name, url: checkpointURL.absoluteString, bytes: bytes, sha256: sha)
        try manifest.save(directory: cache.directory)
        if !options.keepCheckpoints {
            try? FileManager.default.removeItem(at: checkpoint)
            options.log("deleted \(checkpoint.path) (its size and SHA-256 stay in \(cache.downloadsDirectory.path)/\(Manifest.fileName))")
        }
        return SetupResult(model: model.name, url: destination, bytes: bytes, sha256: sha, action: .installed)
    }

    private func fetch(_ downloader: Downloader, _ file: String, _ url: URL) throws {
        let outcome = try downloader.fetch(file, from: url, pin: ReleasedModel.pins[file])
        switch outcome {
        case .alreadyPresent: break
        case .recordedExisting: options.log("kept \(file) already in \(downloader.directory.path) (SHA-256 recorded)")
        case let .downloaded(bytes, resumed):
            options.log("downloaded \(file) (\(bytes) bytes\(resumed > 0 ? ", resumed from \(resumed)" : ""))")
        }
    }
}
