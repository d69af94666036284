// `glide setup`: the released models downloaded, converted (tokenizer embedded), verified and installed in the
// model cache (the recipe is ModelSetup in ModelStore); `glide models`: what the cache holds.
import ArgumentParser
import Converter
import Foundation
import ModelStore

struct Setup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download, convert, verify and install the released GLIDE models in the model cache.",
        discussion: """
        Models: \(ReleasedModel.all.map(\.name).joined(separator: ", ")), or all (default: \
        \(ReleasedModel.defaultSetup.joined(separator: " + "))). For each: the checkpoint and its tokenizer files \
        are downloaded into CACHE/downloads (resumable; length and SHA-256 checked; recorded in \
        CACHE/downloads/manifest.json), converted to CACHE/<model>-<type>.glw with the tokenizer embedded, \
        verified tensor by tensor against the checkpoint, recorded in CACHE/manifest.json, and the checkpoint \
        is deleted (--keep-checkpoints keeps it). A model already installed and matching the manifest is left \
        alone, so a second run does nothing.

        The cache is $\(ModelCache.homeVariable), else $XDG_CACHE_HOME/glide, else ~/.cache/glide. `glide sample`, \
        `upsample` and `inpaint` use the installed models when no model path is given.

        Trust: the project has not pinned the released files' digests (it could not download them); the first \
        download's size and SHA-256 are recorded and every later download or use is checked against them.

        --mirror URL fetches the same file names from another host, all in one folder: URL/base.pt, \
        URL/upsample.pt, URL/base_inpaint.pt, URL/upsample_inpaint.pt, URL/clip_image_enc.pt, \
        URL/clip_text_enc.pt, and the tokenizer files URL/encoder.json.gz, URL/vocab.bpe.gz, \
        URL/bpe_simple_vocab_16e6.txt.gz (http://, https:// or file://).

        Examples:
          glide setup
          glide setup base-inpaint upsample-inpaint --type bf16
          glide setup --list
        """)

    @Argument(help: "Models to install (\(ReleasedModel.all.map(\.name).joined(separator: ", ")), all).")
    var models: [String] = []

    @Option(help: "Storage type of the weight matrices: int8, bf16, f16 or f32.")
    var type: String = "int8"

    @Flag(help: "Keep the downloaded .pt checkpoints in CACHE/downloads.")
    var keepCheckpoints = false

    @Option(help: ArgumentHelp("Fetch from this host instead (same file names, one folder; see above).", valueName: "url"))
    var mirror: String?

    @Flag(help: "Download again and reinstall, even when present (a file that no longer matches its manifest needs this).")
    var force = false

    @Flag(help: "List the installed models instead (as `glide models`).")
    var list = false

    @Flag(help: "No progress display.")
    var quiet = false

    func validate() throws {
        _ = try parseTargetType(type, command: "setup")
        for name in models where name != "all" && ReleasedModel.named(name) == nil {
            throw ValidationError("unknown model '\(name)'; known: \(ReleasedModel.all.map(\.name).joined(separator: ", ")), all")
        }
        if let mirror, URL(string: mirror)?.scheme == nil { throw ValidationError("--mirror needs a URL (http://, https:// or file://), got '\(mirror)'") }
        if list && !models.isEmpty { throw ValidationError("--list takes no model names") }
    }

    func run() throws {
        let cache = ModelCache()
        if list { return try Models.list(cache: cache) }
        let names = models.isEmpty ? ReleasedModel.defaultSetup : (models.contains("all") ? ReleasedModel.all.map(\.name) : models)
        let chosen = names.compactMap(ReleasedModel.named)
        var options = SetupOptions()
        options.type = try parseTargetType(type, command: "setup")
        options.keepCheckpoints = keepCheckpoints
        options.mirror = mirror.flatMap { URL(string: $0) }
        options.force = force
        let showProgress = !quiet && isatty(STDERR_FILENO) != 0
        let bytes = ByteProgress(enabled: showProgress)
        let conversion = ProgressReporter(quiet: quiet)
        options.downloadProgress = { bytes.update($0) }
        options.conversionProgress = { conversion.update($0, $1, $2) }
        options.log = { line in
            bytes.finish(); conversion.finish()
            if !quiet { printToStderr("glide setup: \(line)") }
        }
        options.warn = { conversion.finish(); printToStderr("glide setup: warning: \($0)") }
        let results: [SetupResult]
        do {
            results = try ModelSetup(cache: cache, options: options).install(chosen)
        } catch {
            bytes.finish(); conversion.finish()
            failCommand("setup", withStoreAdvice(error))
        }
        bytes.finish(); conversion.finish()
        for r in results {
            let what = r.action == .installed ? "installed" : "already set up:"
            print("\(what) \(r.model) -> \(r.url.path) (\(formatBytes(Int(r.bytes))), SHA-256 \(r.sha256))")
        }
    }
}

/// Adds the flag that fixes a ModelStore error (the library's messages name no flags).
func withStoreAdvice(_ error: Error) -> Error {
    switch error {
    case ModelStoreError.presentFileMismatch:
        return CLIError("\(error); run again with --force to fetch it again")
    case ModelStoreError.digestMismatch, ModelStoreError.lengthMismatch:
        return CLIError("\(error). If the file was legitimately replaced upstream, delete its entry from the manifest and run again")
    default:
        return error
    }
}

/// `glide models`: the installed models.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the models installed by `glide setup`: name, type, size, SHA-256 and path.",
        discussion: """
        The SHA-256 is the one recorded when the model was installed (CACHE/manifest.json); a file whose size no \
        longer matches is marked CHANGED, and a file the manifest does not know is hashed now.

        Example:
          glide models
        """)

    func run() throws {
        try Models.list(cache: ModelCache())
    }

    static func list(cache: ModelCache) throws {
        let models = try cache.models()
        print("model cache: \(cache.directory.path)")
        if models.isEmpty {
            print("no models installed; run: glide setup")
            return
        }
        for m in models {
            let sha = try m.recordedSHA256 ?? sha256OfFile(m.url.path).sha256 + " (not in the manifest)"
            let name = m.model.padding(toLength: 17, withPad: " ", startingAt: 0)
            print("\(name) \(m.type.padding(toLength: 5, withPad: " ", startingAt: 0)) \(formatBytes(Int(m.bytes)).padding(toLength: 10, withPad: " ", startingAt: 0)) "
                  + "\(sha)\(m.changedSinceSetup ? " CHANGED" : "")  \(m.url.path)")
        }
    }
}
