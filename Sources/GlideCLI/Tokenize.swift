// `glide tokenize`: show how a prompt is tokenized and padded, as the reference feeds it to the model.
import ArgumentParser
import Foundation
import GlideModel
import WeightFormat

/// `glide tokenize "TEXT"`: token ids, padded ids and mask (GPT-2 BPE, or CLIP's tokenizer with --clip).
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the token ids of a prompt, padded and masked as the model sees them.",
        discussion: """
        GLIDE's text models use GPT-2's byte-level BPE: the prompt is lowercased, split, merged, then cut to \
        text_ctx tokens (128 for the released models) and padded with <|endoftext|> (50256); the mask marks \
        the real tokens. With --clip, CLIP's tokenizer is used instead (text cleanup, <|startoftext|> ... \
        <|endoftext|>, zero padding to 77), as the noised CLIP text encoder sees the prompt; its mask marks \
        the first `length` positions (start and end markers included).

        The vocabulary comes from --vocab DIR (a folder holding encoder.json.gz and vocab.bpe.gz, or \
        bpe_simple_vocab_16e6.txt.gz for --clip; `glide download --tokenizer` fetches them) or from a \
        converted model with an embedded tokenizer (--model FILE.glw, which also supplies text_ctx).

        Examples:
          glide tokenize "an oil painting of a corgi" --vocab models/vocab
          glide tokenize "a corgi" --model base.glw --json
          glide tokenize "a corgi" --vocab models/vocab --clip
        """
    )

    @Argument(help: "The text to tokenize.")
    var text: String

    @Option(help: ArgumentHelp("Folder holding the released tokenizer files.", valueName: "dir"))
    var vocab: String?

    @Option(help: ArgumentHelp("A converted model (.glw) with an embedded tokenizer.", valueName: "file.glw"))
    var model: String?

    @Option(help: ArgumentHelp("Context length to pad/truncate to (default: the model's text_ctx, else 128; 77 with --clip).",
                               valueName: "n"))
    var ctx: Int?

    @Flag(help: "Print one JSON object {\"tokens\", \"padded\", \"mask\"} (with --clip also \"len\") instead of text.")
    var json = false

    @Flag(help: "Use CLIP's tokenizer (as glide_text2im.clip does) instead of GPT-2's BPE.")
    var clip = false

    func validate() throws {
        if vocab == nil && model == nil {
            throw ValidationError("give --vocab DIR (the folder with the tokenizer files) or --model FILE.glw")
        }
        if vocab != nil && model != nil { throw ValidationError("give either --vocab or --model, not both") }
        if let ctx, ctx < (clip ? 2 : 1) { throw ValidationError("--ctx must be at least \(clip ? 2 : 1)") }
    }

    func run() throws {
        var modelCtx: Int? = nil
        var weightFile: WeightFile? = nil
        if let model {
            let file = try WeightFile(path: model)
            weightFile = file
            for key in clip ? ["max_text_len", "text_ctx"] : ["text_ctx"] {
                if case let .int(v)? = file.hyperparameters[key] { modelCtx = v; break }
            }
        }
        defer { withExtendedLifetime(weightFile) {} }

        let tokens: [Int], padded: [Int], mask: [Bool]
        var pieces: [String] = []
        if clip {
            let tok = try loadCLIPTokenizer(vocab: vocab, model: weightFile)
            let context = ctx ?? modelCtx ?? 77
            tokens = tok.encode(text)
            let (p, length) = tok.paddedTokensAndLength(tokens, context: context)
            padded = p
            mask = (0..<context).map { $0 < length }
            pieces = tokens.map { Tokenize.show(tok.decodeBytes([$0])) }
        } else {
            let tok = try loadGPT2Tokenizer(vocab: vocab, model: weightFile)
            let context = ctx ?? modelCtx ?? 128
            tokens = tok.encode(text)
            (padded, mask) = tok.paddedTokensAndMask(tokens, context: context)
            pieces = tokens.map { Tokenize.show(tok.decodeBytes([$0])) }
        }

        if json {
            func list(_ xs: [Int]) -> String { "[" + xs.map(String.init).joined(separator: ", ") + "]" }
            let length = clip ? ", \"len\": \(mask.filter { $0 }.count)" : ""
            print("{\"tokens\": \(list(tokens)), \"padded\": \(list(padded)), \"mask\": [\(mask.map { $0 ? "true" : "false" }.joined(separator: ", "))]\(length)}")
            return
        }
        let kept = mask.filter { $0 }.count
        print("tokens (\(tokens.count)): \(tokens.map(String.init).joined(separator: " "))")
        print("pieces: \(pieces.joined(separator: " "))")
        print("padded (ctx \(padded.count)): \(padded.map(String.init).joined(separator: " "))")
        print("mask: \(kept) true, \(padded.count - kept) false")
        let dropped = tokens.count - (clip ? max(padded.count - 2, 0) : padded.count)
        if dropped > 0 { print("truncated: the last \(dropped) token(s) do not fit in \(padded.count)") }
    }

    /// A token's bytes as a quoted string, or as hex when they are not valid UTF-8 on their own.
    static func show(_ bytes: [UInt8]) -> String {
        if let s = String(validating: bytes, as: UTF8.self) { return s.debugDescription }
        return "<" + bytes.map { String($0, radix: 16) }.joined(separator: " ") + ">"
    }
}
