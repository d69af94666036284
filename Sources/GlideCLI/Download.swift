// `glide download`: the released checkpoints (and tokenizer files) fetched into a folder with a manifest,
// by ModelStore's Downloader (resumable, length and SHA-256 checked before the rename).
import ArgumentParser
import Converter
import Foundation
import ModelStore

struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download the released GLIDE checkpoints (PyTorch .pt files) from OpenAI.",
        discussion: """
        Models: \(ReleasedModel.all.map(\.name).joined(separator: ", ")), or `all`. (`glide setup` does this, \
        the conversion and the installation in one step.)

        Each file is written to OUTDIR/<file>.part, resumed there after an interruption (HTTP Range), and \
        renamed into place only after its length and SHA-256 are checked: against the project's pins where \
        it has them (none yet for the released files), else against OUTDIR/manifest.json, where the first \
        download's URL, size, SHA-256 and time are recorded. A file present and matching the manifest is not \
        fetched again; one that does not match is reported, and fetched again with --force.

        --mirror URL serves the same file names, in one folder: URL/base.pt ... URL/clip_text_enc.pt and, for \
        --tokenizer, URL/encoder.json.gz, URL/vocab.bpe.gz, URL/bpe_simple_vocab_16e6.txt.gz.

        Example:
          glide download base --tokenizer -o models
          glide convert models/base.pt -o base.glw --type int8 --tokenizer models/vocab
        """
    )

    @Argument(help: "Models to fetch (base, upsample, base-inpaint, upsample-inpaint, clip/image-enc, clip/text-enc, all).")
    var models: [String] = []

    @Option(name: [.short, .customLong("output")], help: "Folder to write into (created if missing).")
    var outputDirectory: String = "models"

    @Flag(help: "Also fetch the tokenizer files (GPT-2 BPE and CLIP BPE) into OUTDIR/vocab.")
    var tokenizer = false

    @Option(help: "Base URL to fetch the files from instead (http(s):// or file://; same file names, see above).")
    var mirror: String?

    @Flag(help: "Fetch again files that are present (also those that no longer match the manifest).")
    var force = false

    @Flag(help: "No progress display.")
    var quiet = false

    func validate() throws {
        if models.isEmpty && !tokenizer {
            throw ValidationError("name at least one model (or `all`), or pass --tokenizer")
        }
        for name in models where name != "all" && ReleasedModel.named(name) == nil {
            throw ValidationError("unknown model '\(name)'; known: \(ReleasedModel.all.map(\.name).joined(separator: ", ")), all")
        }
        if let mirror, URL(string: mirror)?.scheme == nil { throw ValidationError("--mirror needs a URL (http://, https:// or file://), got '\(mirror)'") }
    }

    func run() throws {
        let chosen = models.contains("all") ? ReleasedModel.all : models.compactMap(ReleasedModel.named)
        let outDir = URL(fileURLWithPath: outputDirectory)
        let mirrorURL = mirror.flatMap { URL(string: $0) }
        var jobs: [(Downloader, String, URL)] = []
        let checkpoints = Downloader(directory: outDir)
        for model in chosen { jobs.append((checkpoints, model.checkpointFile, model.checkpointURL(mirror: mirrorURL))) }
        if tokenizer {
            let vocab = Downloader(directory: outDir.appendingPathComponent("vocab"))
            for file in ReleasedModel.gpt2TokenizerFiles + ReleasedModel.clipTokenizerFiles {
                jobs.append((vocab, file, ReleasedModel.tokenizerURL(file, mirror: mirrorURL)))
            }
        }
        let progress = ByteProgress(enabled: !quiet && isatty(STDERR_FILENO) != 0)
        for (downloader, file, url) in jobs {
            downloader.force = force
            downloader.progress = { progress.update($0) }
            let path = downloader.directory.appendingPathComponent(file).path
            do {
                switch try downloader.fetch(file, from: url, pin: ReleasedModel.pins[file]) {
                case .alreadyPresent: print("kept \(path) (matches the manifest)")
                case .recordedExisting: print("kept \(path) (recorded its SHA-256 in the manifest)")
                case let .downloaded(_, resumed): progress.finish(); print("wrote \(path)\(resumed > 0 ? " (resumed)" : "")")
                }
            } catch {
                progress.finish()
                throw withStoreAdvice(error)
            }
        }
        if let first = chosen.first {
            print("next: glide convert \(outDir.appendingPathComponent(first.checkpointFile).path) -o \(first.cacheStem).glw --type int8"
                  + (tokenizer ? " --tokenizer \(outDir.appendingPathComponent("vocab").path)" : ""))
        }
    }
}

/// A one-line download display on stderr: file, bytes, percentage, rate, ETA (at most 5 redraws a second).
final class ByteProgress: @unchecked Sendable {
    private let enabled: Bool
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var drawn = false

    init(enabled: Bool) {
        self.enabled = enabled
    }

    func update(_ p: TransferProgress) {
        guard enabled else { return }
        lock.withLock {
            let complete = p.bytesTotal == p.bytesDone
            guard complete || Date().timeIntervalSince(lastDraw) > 0.2 else { return }
            lastDraw = Date()
            drawn = true
            FileHandle.standardError.write(Data(ByteProgress.line(p).utf8))
        }
    }

    /// "\rbase.pt: 512.0 MB / 1.54 GB (33%), 48.2 MB/s, ETA 21 s   ".
    static func line(_ p: TransferProgress) -> String {
        var line = "\r\(p.file): \(formatBytes(Int(p.bytesDone)))"
        if let total = p.bytesTotal, total > 0 {
            line += " / \(formatBytes(Int(total))) (\(Int(100 * Double(p.bytesDone) / Double(total)))%)"
        }
        line += ", \(formatBytes(Int(p.bytesPerSecond)))/s"
        if let eta = p.secondsRemaining { line += ", ETA \(Int(eta.rounded())) s" }
        if p.resumedFrom > 0 { line += ", resumed at \(formatBytes(Int(p.resumedFrom)))" }
        return line + "   "
    }

    func finish() {
        lock.withLock {
            if drawn { FileHandle.standardError.write(Data("\n".utf8)); drawn = false }
        }
    }
}
