// The model cache folder: converted models as `<model>-<type>.glw` with a manifest, and the downloads
// (checkpoints, tokenizer files, their manifest) in `downloads/`.
import Foundation
import WeightFormat

/// A converted model in the cache.
public struct CachedModel: Sendable, Equatable {
    /// The released model's name (`base`, `clip/image-enc`, ...).
    public let model: String
    /// Storage type of its weight matrices (`int8`, `bf16`, `f16`, `f32`).
    public let type: String
    public let url: URL
    public let bytes: Int64
    /// SHA-256 recorded when it was set up (nil for a file the cache's manifest does not know).
    public let recordedSHA256: String?
    /// The file's size differs from the manifest's record (changed since set-up).
    public let changedSinceSetup: Bool
}

/// The folder `glide setup` fills and the sampling commands read.
///
/// Layout: `<directory>/<model>-<type>.glw` (e.g. `base-int8.glw`, `clip-image-enc-f16.glw`) and
/// `<directory>/manifest.json` recording each one's source URL, size and SHA-256; `<directory>/downloads/`
/// holds the checkpoints and tokenizer files with their own `manifest.json`.
public struct ModelCache: Sendable {
    /// Environment variable naming the cache folder.
    public static let homeVariable = "GLIDE_HOME"
    /// Storage types, in the order a lookup without a type prefers them.
    public static let typePreference = ["int8", "bf16", "f16", "f32"]

    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    /// The cache in `$GLIDE_HOME`, else `$XDG_CACHE_HOME/glide`, else `~/.cache/glide`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(directory: ModelCache.defaultDirectory(environment: environment))
    }

    /// `$GLIDE_HOME`, else `$XDG_CACHE_HOME/glide`, else `~/.cache/glide` (empty variables count as unset).
    public static func defaultDirectory(environment: [String: String]) -> URL {
        if let home = environment[homeVariable], !home.isEmpty { return URL(fileURLWithPath: home) }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("glide")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/glide")
    }

    /// Checkpoints and tokenizer files.
    public var downloadsDirectory: URL { directory.appendingPathComponent("downloads") }

    /// The cache file of `model` stored as `type`.
    public func url(for model: ReleasedModel, type: String) -> URL {
        directory.appendingPathComponent("\(model.cacheStem)-\(type).glw")
    }

    /// Splits `base`, `base-int8`, `clip/image-enc-f16` into the model and an optional type.
    public static func parseName(_ name: String) throws -> (model: ReleasedModel, type: String?) {
        if let model = ReleasedModel.named(name) { return (model, nil) }
        for type in typePreference where name.hasSuffix("-" + type) {
            if let model = ReleasedModel.named(String(name.dropLast(type.count + 1))) { return (model, type) }
        }
        throw ModelStoreError.unknownModel(name: name, known: ReleasedModel.all.map(\.name))
    }

    /// The cached file of the model called `name` (`base`, `base-f16`, `clip/text-enc`, ...); without a type in
    /// the name, the first present of int8, bf16, f16, f32.
    public func locate(_ name: String) throws -> URL {
        let (model, type) = try ModelCache.parseName(name)
        for t in type.map({ [$0] }) ?? ModelCache.typePreference {
            let url = url(for: model, type: t)
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw ModelStoreError.notInCache(model: model.name, type: type, directory: directory.path)
    }

    /// Whether some type of `model` is cached.
    public func contains(_ model: String) -> Bool { (try? locate(model)) != nil }

    /// Every cached model (files named `<model>-<type>.glw`), in the catalogue's order.
    public func models() throws -> [CachedModel] {
        let manifest = try Manifest.load(directory: directory)
        var out: [CachedModel] = []
        for model in ReleasedModel.all {
            for type in ModelCache.typePreference {
                let url = url(for: model, type: type)
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
                      let size = (attributes[.size] as? NSNumber)?.int64Value else { continue }
                let entry = manifest[url.lastPathComponent]
                out.append(CachedModel(model: model.name, type: type, url: url, bytes: size, recordedSHA256: entry?.sha256,
                                       changedSinceSetup: entry.map { $0.bytes != size } ?? false))
            }
        }
        return out
    }
}
