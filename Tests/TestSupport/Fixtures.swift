// Shared helpers for the test targets: where fixtures live, and named tolerances.
import Foundation

/// Paths the tests read from. Fixtures are committed under `Tests/Fixtures/`;
/// the released tokenizer files and example image come from `../shared` beside the repository.
public enum TestPaths {
    /// The package root (the folder holding Package.swift).
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }   // TestSupport.swift -> TestSupport -> Tests -> root
        return url
    }()
    /// `Tests/Fixtures/<sub>`.
    public static func fixture(_ sub: String) -> URL {
        packageRoot.appendingPathComponent("Tests/Fixtures").appendingPathComponent(sub)
    }
    /// Environment variable naming the folder of files from outside the repository (the released CLIP and GPT-2
    /// vocabularies under `vocab/`, the reference's example image `images/grass.png`). Default: `../shared`.
    public static let sharedEnvironmentVariable = "GLIDE_SHARED_DIR"

    /// The folder of outside files: `$GLIDE_SHARED_DIR`, else `shared` beside the repository.
    public static var sharedDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment[sharedEnvironmentVariable], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }

    /// `<shared>/<sub>` (see `sharedDirectory`), whether or not it exists; tests use `requireShared`.
    public static func shared(_ sub: String) -> URL {
        sharedDirectory.appendingPathComponent(sub)
    }

    /// `<shared>/<sub>` if it exists, else nil and a one-line reason saying how to enable the test.
    public static func sharedIfPresent(_ sub: String) -> (url: URL?, skipReason: String) {
        let url = shared(sub)
        let reason = "needs \(sub) from outside the repository: put the shared folder beside the clone (../shared) "
            + "or set \(sharedEnvironmentVariable)=/path/to/shared"
        return (FileManager.default.fileExists(atPath: url.path) ? url : nil, reason)
    }

    /// The shipped digits model (`Models/digits-int8.glw`), which embeds the released GPT-2 tokenizer files.
    public static var digitsModel: URL { packageRoot.appendingPathComponent("Models/digits-int8.glw") }

    /// A folder holding the tiny synthetic GPT-2-format vocabulary of the pipeline fixtures
    /// (`Tests/Fixtures/pipeline/tiny-tokenizer/tiny-*.gz`, 264 tokens) under the standard file names
    /// `encoder.json.gz` and `vocab.bpe.gz` that the tokenizer and `glide convert --tokenizer` expect.
    /// The committed files carry a `tiny-` prefix so they are never mistaken for the released vocabulary.
    public static func tinyTokenizerDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glide-tiny-tokenizer-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["encoder.json.gz", "vocab.bpe.gz"] {
            let target = dir.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: target.path) { continue }
            try FileManager.default.copyItem(at: fixture("pipeline/tiny-tokenizer/tiny-\(name)"), to: target)
        }
        return dir
    }
}
