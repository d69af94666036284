// Which tokenizer a run uses: a folder the caller names, else the first model file that embeds one.
import WeightFormat

extension GPT2Tokenizer {
    /// True when `file` embeds the GPT-2 tokenizer files.
    public static func isEmbedded(in file: WeightFile) -> Bool {
        file.tokenizerFiles[encoderFileName] != nil || file.tokenizerFiles["encoder.json"] != nil
    }

    /// The tokenizer from `directory` when given, else from the first of `files` that embeds one.
    /// Throws `GlideModelError.missingTokenizer` naming the first file when none has it.
    public static func load(directory: String?, embeddedIn files: [WeightFile]) throws -> GPT2Tokenizer {
        if let directory { return try GPT2Tokenizer(directory: directory) }
        guard let file = files.first(where: isEmbedded) else {
            throw GlideModelError.missingTokenizer(model: files.first?.path ?? "the model", kind: "GPT-2")
        }
        return try GPT2Tokenizer(files: file.tokenizerFiles)
    }
}

extension CLIPTokenizer {
    /// True when `file` embeds CLIP's tokenizer file.
    public static func isEmbedded(in file: WeightFile) -> Bool {
        file.tokenizerFiles[mergesFileName] != nil || file.tokenizerFiles["bpe_simple_vocab_16e6.txt"] != nil
    }

    /// The tokenizer from `directory` when given, else from the first of `files` that embeds one.
    /// Throws `GlideModelError.missingTokenizer` naming the first file when none has it.
    public static func load(directory: String?, embeddedIn files: [WeightFile]) throws -> CLIPTokenizer {
        if let directory { return try CLIPTokenizer(directory: directory) }
        guard let file = files.first(where: isEmbedded) else {
            throw GlideModelError.missingTokenizer(model: files.first?.path ?? "the model", kind: "CLIP")
        }
        return try CLIPTokenizer(files: file.tokenizerFiles)
    }
}
