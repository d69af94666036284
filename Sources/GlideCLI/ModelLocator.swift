// Finds the shipped default model (the small digits GLIDE) relative to the running executable,
// never relative to the working directory.
import Foundation

/// Where `glide sample` looks for its default model when no `--model` is given.
///
/// Search order:
/// 1. `$GLIDE_DEFAULT_MODEL`, if set (a path to a `.glw` file).
/// 2. From the directory holding the executable's real path (symlinks resolved; `/proc/self/exe` on Linux),
///    walking up to the filesystem root, in each directory D:
///    `D/Models/digits-int8.glw` (a source checkout: `.build/<config>/glide` finds the repository's `Models/`)
///    and `D/share/glide/digits-int8.glw` (an install prefix: `PREFIX/bin/glide` finds `PREFIX/share/glide/`).
enum ModelLocator {
    /// File name of the shipped default model.
    static let defaultModelName = "digits-int8.glw"
    /// Environment variable that overrides the search.
    static let environmentOverride = "GLIDE_DEFAULT_MODEL"
    /// Folders, relative to each searched directory, that may hold the model.
    static let relativeFolders = ["Models", "share/glide"]

    /// One-paragraph description for `--help`.
    static let helpText = """
    The default model is the small digits GLIDE shipped with glide (\(defaultModelName), 16x16, trained on \
    handwritten digits; try "a handwritten digit 7"). It is found relative to the glide executable: walking up \
    from the executable's real location, the first folder containing Models/\(defaultModelName) (a source \
    checkout) or share/glide/\(defaultModelName) (an install prefix, e.g. /usr/local/bin/glide -> \
    /usr/local/share/glide/). Set \(environmentOverride)=FILE.glw to override.
    """

    /// The real path of the running executable, symlinks resolved.
    static func executablePath() -> URL? {
        #if os(Linux)
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: target).resolvingSymlinksInPath()
        }
        #endif
        if let url = Bundle.main.executableURL { return url.resolvingSymlinksInPath() }
        let arg0 = CommandLine.arguments.first ?? ""
        return arg0.isEmpty ? nil : URL(fileURLWithPath: arg0).resolvingSymlinksInPath()
    }

    /// Every candidate path, in search order, for an executable at `executable`.
    static func candidates(executable: URL?, environment: [String: String] = ProcessInfo.processInfo.environment) -> [URL] {
        var out: [URL] = []
        if let override = environment[environmentOverride], !override.isEmpty {
            out.append(URL(fileURLWithPath: override))
        }
        guard let executable else { return out }
        var dir = executable.deletingLastPathComponent().standardizedFileURL
        while true {
            for folder in relativeFolders {
                out.append(dir.appendingPathComponent(folder).appendingPathComponent(defaultModelName))
            }
            let parent = dir.deletingLastPathComponent().standardizedFileURL
            if parent.path == dir.path || dir.path == "/" { break }
            dir = parent
        }
        return out
    }

    /// The default model's path, or a one-line error saying where it looked.
    static func defaultModel(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        let exe = executablePath()
        let all = candidates(executable: exe, environment: environment)
        if let override = environment[environmentOverride], !override.isEmpty {
            guard FileManager.default.fileExists(atPath: override) else {
                throw ModelLocatorError("\(environmentOverride)=\(override) does not exist")
            }
            return URL(fileURLWithPath: override)
        }
        if let found = all.first(where: { FileManager.default.fileExists(atPath: $0.path) }) { return found }
        let start = exe?.deletingLastPathComponent().path ?? "(unknown executable location)"
        throw ModelLocatorError("default model \(defaultModelName) not found in Models/ or share/glide/ of \(start) "
            + "or any parent folder; pass --model FILE.glw or set \(environmentOverride)")
    }
}

/// A one-line user-facing failure (printed as `Error: <message>`).
struct ModelLocatorError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

// The model cache (`glide setup`): names such as `base` or `upsample-f16` given where a .glw path is expected.
import ModelStore

extension ModelLocator {
    /// A `--model`-style argument as a path: an existing file as given; else a released model's name
    /// (`base`, `upsample-f16`, `clip/image-enc`, ...) looked up in the model cache, failing with the exact
    /// `glide setup` command when it is not there; anything else as given (the loader reports a missing file).
    static func resolve(_ argument: String, cache: ModelCache = ModelCache()) throws -> String {
        if FileManager.default.fileExists(atPath: argument) { return argument }
        guard let (model, type) = try? ModelCache.parseName(argument) else { return argument }
        do {
            return try cache.locate(argument).path
        } catch ModelStoreError.notInCache {
            throw ModelLocatorError(missingModelMessage(model: model.name, type: type, cache: cache))
        }
    }

    /// The cached model `name` if it is set up, else nil.
    static func cached(_ name: String, cache: ModelCache = ModelCache()) -> String? {
        (try? cache.locate(name))?.path
    }

    /// "model X is not set up in the model cache DIR; run: glide setup X [--type T]".
    static func missingModelMessage(model: String, type: String?, cache: ModelCache) -> String {
        let command = "glide setup \(model)" + (type.map { $0 == "int8" ? "" : " --type \($0)" } ?? "")
        return "model \(model)\(type.map { " (\($0))" } ?? "") is not set up in the model cache \(cache.directory.path); "
            + "run: \(command)"
    }

    /// The models of `glide sample`: `--model` and `--upsampler` resolved (paths or cached names); without
    /// `--model`, the cached `base` with the cached `upsample` (unless `--upsampler` is given) when `base` is
    /// set up, else the shipped digits model.
    static func sampleModels(model: String?, upsampler: String?, cache: ModelCache = ModelCache()) throws -> (model: String, upsampler: String?) {
        let explicitUpsampler = try upsampler.map { try resolve($0, cache: cache) }
        if let model { return (try resolve(model, cache: cache), explicitUpsampler) }
        if ProcessInfo.processInfo.environment[environmentOverride].map({ !$0.isEmpty }) != true,
           let base = cached("base", cache: cache) {
            return (base, explicitUpsampler ?? cached("upsample", cache: cache))
        }
        return (try defaultModel().path, explicitUpsampler)
    }

    /// One paragraph for the sampling commands' `--help` about the cache.
    static let cacheHelpText = """
    Models may be given as paths or as names of models set up with `glide setup` (base, upsample, \
    base-inpaint, upsample-inpaint; a type suffix picks one of several: base-f16), found in the model cache \
    ($\(ModelCache.homeVariable), else $XDG_CACHE_HOME/glide, else ~/.cache/glide).
    """
}
