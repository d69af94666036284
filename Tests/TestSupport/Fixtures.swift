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
    /// `../shared/<sub>` next to the repository (tokenizer vocabularies, example images).
    public static func shared(_ sub: String) -> URL {
        packageRoot.deletingLastPathComponent().appendingPathComponent("shared").appendingPathComponent(sub)
    }

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
