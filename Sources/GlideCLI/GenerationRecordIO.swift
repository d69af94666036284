// Images that remember: the library's GenerationRecord written into PNGs as text chunks (one `glide:*` field
// each), read back for `glide inspect IMAGE.png` and `glide sample --replay IMAGE.png`, and model digests.
import Converter
import Foundation
import GlideModel
import Imaging

enum RecordIO {
    /// `glide-swift <version>` as stored in `glide:tool` (the version `glide --version` prints).
    static var tool: String { "glide-swift " + Glide.version }

    /// SHA-256 of the whole file at `path`, through libcrypto's SHA instructions when available. Measured with a
    /// replay refused for a digest mismatch (open the model, hash it, exit; `/usr/bin/time`, AMD EPYC Zen 5):
    /// 0.25 s user for the 413 MB int8 base model, 0.72 s for the 1.5 GB f32 one, against minutes of sampling.
    static func sha256(path: String) throws -> String {
        guard let f = fopen(path, "rb") else { throw CLIError("\(path): \(String(cString: strerror(errno)))") }
        defer { fclose(f) }
        let hasher = FastSHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 22)
        while true {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
            if n < buffer.count {
                if ferror(f) != 0 { throw CLIError("\(path): read error") }
                break
            }
        }
        return hasher.finalizeHex()
    }

    /// The record entry of the model file at `path` (hashes the whole file).
    static func modelFile(path: String, model: Text2ImUNet) throws -> GenerationRecord.ModelFile {
        GenerationRecord.ModelFile(path: path, file: model.file, sha256: try sha256(path: path))
    }

    /// `file name sha256:DIGEST` for an input file (an image, a mask, a .npy).
    static func inputFile(_ path: String) throws -> String {
        "\((path as NSString).lastPathComponent) sha256:\(try sha256(path: path))"
    }

    /// Writes `image` as a PNG carrying `record`'s fields.
    static func writePNG(_ image: Image, path: String, record: GenerationRecord) throws {
        try Imaging.writePNG(image, path: path, text: record.textFields.map { PNGTextField(keyword: $0.key, text: $0.value) })
    }

    /// All text fields of the PNG at `path`, and the generation record among them (nil when it has no `glide:tool`).
    static func read(png path: String) throws -> (fields: [PNGTextField], record: GenerationRecord?) {
        let fields = try readPNGText(path: path)
        let pairs = fields.map { (key: $0.keyword, value: $0.text) }
        guard pairs.contains(where: { $0.key == GenerationRecord.keyPrefix + "tool" }) else { return (fields, nil) }
        return (fields, try GenerationRecord(textFields: pairs))
    }

    /// Prints a PNG's generation record and any other text fields (`glide inspect IMAGE.png`).
    static func inspect(png path: String, json: Bool) throws {
        let (fields, record) = try read(png: path)
        if json {
            var object: [String: Any] = ["file": path, "text": fields.map { ["keyword": $0.keyword, "text": $0.text] }]
            if let record {
                object["record"] = Dictionary(record.textFields.map { (String($0.key.dropFirst(GenerationRecord.keyPrefix.count)), $0.value) },
                                              uniquingKeysWith: { a, _ in a })
                object["replayable"] = (try? record.checkReplayable()) != nil
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard let record else {
            print("\(path): no glide generation record" + (fields.isEmpty ? " (no text chunks)" : ""))
            for f in fields { print("  \(f.keyword): \(f.text)") }
            return
        }
        print("\(path): made by \(record.tool), glide \(record.command.rawValue)")
        let width = record.textFields.map { $0.key.count }.max() ?? 0
        for (key, value) in record.textFields {
            print("  " + key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
        let others = fields.filter { !$0.keyword.hasPrefix(GenerationRecord.keyPrefix) }
        for f in others { print("  \(f.keyword): \(f.text)") }
        do {
            try record.checkReplayable()
            print("replay: glide sample --replay \(path) (with \(record.model.fileName)"
                  + (record.upsampler.map { " and \($0.fileName)" } ?? "") + ", checked by SHA-256)")
        } catch let error as GlideModelError {
            print("replay: not possible: \(error)")
        }
    }
}
