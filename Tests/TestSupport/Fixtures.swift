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
}
