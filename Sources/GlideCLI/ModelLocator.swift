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
