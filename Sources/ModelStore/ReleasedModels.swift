// The six released GLIDE checkpoints, where OpenAI publishes them, the tokenizer files they need,
// and the pinned sizes and digests the project knows.
import Foundation

/// One of OpenAI's released GLIDE checkpoints (the reference's `MODEL_PATHS`).
public struct ReleasedModel: Sendable, Equatable {
    /// The reference's name: `base`, `upsample`, `base-inpaint`, `upsample-inpaint`, `clip/image-enc`, `clip/text-enc`.
    public let name: String
    /// The checkpoint's file name in the bucket (and in a mirror).
    public let checkpointFile: String
    /// The tokenizer files the converted model embeds.
    public let tokenizerFiles: [String]

    /// OpenAI's bucket of the released checkpoints.
    public static let bucket = URL(string: "https://openaipublic.blob.core.windows.net/diffusion/dec-2021")!
    /// Where the reference repository keeps its tokenizer files.
    public static let tokenizerBase = URL(string: "https://raw.githubusercontent.com/openai/glide-text2im/main/glide_text2im/tokenizer")!
    /// GPT-2 BPE files (the GLIDE UNets) and CLIP's BPE file (the CLIP encoders).
    public static let gpt2TokenizerFiles = ["encoder.json.gz", "vocab.bpe.gz"]
    public static let clipTokenizerFiles = ["bpe_simple_vocab_16e6.txt.gz"]

    public static let all: [ReleasedModel] = [
        .init(name: "base", checkpointFile: "base.pt", tokenizerFiles: gpt2TokenizerFiles),
        .init(name: "upsample", checkpointFile: "upsample.pt", tokenizerFiles: gpt2TokenizerFiles),
        .init(name: "base-inpaint", checkpointFile: "base_inpaint.pt", tokenizerFiles: gpt2TokenizerFiles),
        .init(name: "upsample-inpaint", checkpointFile: "upsample_inpaint.pt", tokenizerFiles: gpt2TokenizerFiles),
        .init(name: "clip/image-enc", checkpointFile: "clip_image_enc.pt", tokenizerFiles: clipTokenizerFiles),
        .init(name: "clip/text-enc", checkpointFile: "clip_text_enc.pt", tokenizerFiles: clipTokenizerFiles),
    ]
    /// What `setup` installs when no model is named.
    public static let defaultSetup = ["base", "upsample"]

    /// The model called `name` (the reference's name, or with `-` for `/`: `clip-image-enc`).
    public static func named(_ name: String) -> ReleasedModel? {
        all.first { $0.name == name || $0.cacheStem == name }
    }

    /// The name as used in cache file names: `clip/image-enc` -> `clip-image-enc`.
    public var cacheStem: String { name.replacingOccurrences(of: "/", with: "-") }

    /// The checkpoint's URL under `base` (the bucket, or a mirror serving the same file names).
    public func checkpointURL(mirror: URL? = nil) -> URL {
        (mirror ?? ReleasedModel.bucket).appendingPathComponent(checkpointFile)
    }

    /// A tokenizer file's URL: in the reference repository, or flat in the mirror beside the checkpoints.
    public static func tokenizerURL(_ file: String, mirror: URL? = nil) -> URL {
        (mirror ?? tokenizerBase).appendingPathComponent(file)
    }

    /// Sizes and SHA-256 digests of released files that the project has measured from a real download, by file
    /// name. A download is checked against its pin before it is installed.
    ///
    /// Empty: the project has not yet been able to download the released files, so none is pinned. Until then
    /// a file's size and digest are recorded in the manifest on its first download, and every later download
    /// or use of it is checked against that record (trust on first use).
    public static let pins: [String: FilePin] = [:]
}

/// An expected size and SHA-256 digest of a file.
public struct FilePin: Sendable, Equatable, Codable {
    public var bytes: Int64
    /// 64 lowercase hex digits.
    public var sha256: String
    public init(bytes: Int64, sha256: String) {
        self.bytes = bytes
        self.sha256 = sha256.lowercased()
    }
}
