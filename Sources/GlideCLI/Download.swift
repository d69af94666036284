import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `glide download`: fetch the released GLIDE checkpoints (and optionally the tokenizer files).
struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download the released GLIDE checkpoints (PyTorch .pt files) from OpenAI.",
        discussion: """
        Models: \(ReleasedCheckpoint.all.map(\.name).joined(separator: ", ")), or `all`.
        Each file is written to OUTDIR/<file>.part and renamed when complete, so an interrupted
        download never leaves a truncated .pt behind. Existing files are kept unless --force.
        Afterwards convert them, e.g.:
          glide convert models/base.pt -o base.glw --type int8 --tokenizer models/vocab
        """
    )

    @Argument(help: "Models to fetch (base, upsample, base-inpaint, upsample-inpaint, clip/image-enc, clip/text-enc, all).")
    var models: [String] = []

    @Option(name: [.short, .customLong("output")], help: "Folder to write into (created if missing).")
    var outputDirectory: String = "models"

    @Flag(help: "Also fetch the tokenizer files (GPT-2 BPE and CLIP BPE) into OUTDIR/vocab.")
    var tokenizer = false

    @Option(help: "Base URL to fetch the .pt files from instead of OpenAI's bucket (http(s):// or file://).")
    var mirror: String?

    @Flag(help: "Replace files that already exist.")
    var force = false

    @Flag(help: "No progress display.")
    var quiet = false

    func validate() throws {
        if models.isEmpty && !tokenizer {
            throw ValidationError("name at least one model (or `all`), or pass --tokenizer")
        }
        for name in models where name != "all" && ReleasedCheckpoint.named(name) == nil {
            throw ValidationError("unknown model '\(name)'; known: \(ReleasedCheckpoint.all.map(\.name).joined(separator: ", ")), all")
        }
    }

    func run() throws {
        let chosen = models.contains("all") ? ReleasedCheckpoint.all : models.compactMap(ReleasedCheckpoint.named)
        let outDir = URL(fileURLWithPath: outputDirectory)
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        var jobs: [(URL, URL)] = chosen.map { ckpt in
            let base = mirror.flatMap(URL.init(string:)) ?? ReleasedCheckpoint.bucket
            return (base.appendingPathComponent(ckpt.fileName), outDir.appendingPathComponent(ckpt.fileName))
        }
        if tokenizer {
            let vocabDir = outDir.appendingPathComponent("vocab")
            try FileManager.default.createDirectory(at: vocabDir, withIntermediateDirectories: true)
            jobs += ReleasedCheckpoint.tokenizerFiles.map { name in
                (ReleasedCheckpoint.tokenizerBase.appendingPathComponent(name), vocabDir.appendingPathComponent(name))
            }
        }
        let showProgress = !quiet && isatty(STDERR_FILENO) != 0
        for (source, destination) in jobs {
            if FileManager.default.fileExists(atPath: destination.path) && !force {
                print("kept existing \(destination.path) (use --force to fetch again)")
                continue
            }
            try fetch(source, to: destination, showProgress: showProgress)
            print("wrote \(destination.path)")
        }
        if let first = chosen.first {
            print("next: glide convert \(outDir.appendingPathComponent(first.fileName).path) -o \(first.fileName.replacingOccurrences(of: ".pt", with: ".glw")) --type int8")
        }
    }

    /// Streams `source` into `destination.part`, then renames it into place.
    private func fetch(_ source: URL, to destination: URL, showProgress: Bool) throws {
        let partial = destination.appendingPathExtension("part")
        try? FileManager.default.removeItem(at: partial)
        FileManager.default.createFile(atPath: partial.path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: partial.path) else {
            throw DownloadError.cannotWrite(partial.path)
        }
        defer { try? handle.close() }
        let progress = ByteProgress(label: source.lastPathComponent, enabled: showProgress)
        do {
            if source.isFileURL {
                try copyFile(source, into: handle, progress: progress)
            } else {
                try StreamingFetcher(handle: handle, progress: progress).run(source)
            }
            try handle.synchronize()
            progress.finish()
            try? FileManager.default.removeItem(at: destination)
            try FileManager.default.moveItem(at: partial, to: destination)
        } catch {
            progress.finish()
            try? FileManager.default.removeItem(at: partial)
            throw error
        }
    }

    private func copyFile(_ source: URL, into handle: FileHandle, progress: ByteProgress) throws {
        guard let input = FileHandle(forReadingAtPath: source.path) else {
            throw DownloadError.http(source.absoluteString, status: 404)
        }
        defer { try? input.close() }
        let total = (try? FileManager.default.attributesOfItem(atPath: source.path)[.size] as? Int) ?? nil
        progress.total = total.map(Int64.init)
        while true {
            let chunk = input.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            try handle.write(contentsOf: chunk)
            progress.add(Int64(chunk.count))
        }
    }
}

/// The six released checkpoints and where OpenAI publishes them (the reference's `MODEL_PATHS`).
struct ReleasedCheckpoint: Sendable {
    let name: String
    let fileName: String

    static let bucket = URL(string: "https://openaipublic.blob.core.windows.net/diffusion/dec-2021")!
    static let tokenizerBase = URL(string: "https://raw.githubusercontent.com/openai/glide-text2im/main/glide_text2im/tokenizer")!
    static let tokenizerFiles = ["encoder.json.gz", "vocab.bpe.gz", "bpe_simple_vocab_16e6.txt.gz"]
    static let all: [ReleasedCheckpoint] = [
        .init(name: "base", fileName: "base.pt"),
        .init(name: "upsample", fileName: "upsample.pt"),
        .init(name: "base-inpaint", fileName: "base_inpaint.pt"),
        .init(name: "upsample-inpaint", fileName: "upsample_inpaint.pt"),
        .init(name: "clip/image-enc", fileName: "clip_image_enc.pt"),
        .init(name: "clip/text-enc", fileName: "clip_text_enc.pt"),
    ]
    static func named(_ name: String) -> ReleasedCheckpoint? { all.first { $0.name == name } }
}

enum DownloadError: Error, CustomStringConvertible {
    /// The server answered with a non-2xx status.
    case http(String, status: Int)
    /// The transfer failed (network error), with the underlying message.
    case transfer(String, String)
    /// The destination could not be created.
    case cannotWrite(String)

    var description: String {
        switch self {
        case let .http(url, status): return "download failed: \(url) answered HTTP \(status)"
        case let .transfer(url, why): return "download failed: \(url): \(why)"
        case let .cannotWrite(path): return "cannot write \(path)"
        }
    }
}

/// A one-line byte counter on stderr: bytes, rate, ETA.
final class ByteProgress: @unchecked Sendable {
    private let label: String
    private let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private(set) var done: Int64 = 0
    var total: Int64?

    init(label: String, enabled: Bool) {
        self.label = label
        self.enabled = enabled
    }

    func add(_ bytes: Int64) {
        done += bytes
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.2 else { return }
        lastDraw = Date()
        draw()
    }

    func finish() {
        guard enabled else { return }
        draw()
        FileHandle.standardError.write("\n".data(using: .utf8)!)
    }

    private func draw() {
        let seconds = max(Date().timeIntervalSince(start), 1e-3)
        let rate = Double(done) / seconds
        var line = "\r\(label): \(megabytes(done))"
        if let total, total > 0 {
            let eta = rate > 0 ? Double(total - done) / rate : 0
            line += " / \(megabytes(total)) (\(Int(100 * Double(done) / Double(total)))%), ETA \(Int(eta)) s"
        }
        line += ", \(megabytes(Int64(rate)))/s   "
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }

    private func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f MB", Double(bytes) / 1e6)
    }
}

/// Streams an HTTP(S) body into a file handle, blocking until done.
private final class StreamingFetcher: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let handle: FileHandle
    private let progress: ByteProgress
    private let finished = DispatchSemaphore(value: 0)
    private var failure: Error?

    init(handle: FileHandle, progress: ByteProgress) {
        self.handle = handle
        self.progress = progress
    }

    func run(_ url: URL) throws {
        let session = URLSession(configuration: .default, delegate: self, delegateQueue: nil)
        session.dataTask(with: url).resume()
        finished.wait()
        session.finishTasksAndInvalidate()
        if let failure { throw failure }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            failure = DownloadError.http(response.url?.absoluteString ?? "", status: http.statusCode)
            completionHandler(.cancel)
            return
        }
        if response.expectedContentLength > 0 { progress.total = response.expectedContentLength }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        do {
            try handle.write(contentsOf: data)
            progress.add(Int64(data.count))
        } catch {
            failure = error
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let error, failure == nil {
            failure = DownloadError.transfer(task.originalRequest?.url?.absoluteString ?? "", error.localizedDescription)
        }
        finished.signal()
    }
}
