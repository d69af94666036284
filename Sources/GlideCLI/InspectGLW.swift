// `glide inspect FILE.glw`: header, hyperparameters, provenance and the tensor table of a .glw file.
import Converter
import Foundation
import WeightFormat

/// Prints the contents of the .glw file at `path` as a table, or as one JSON object with `json`.
/// Opening validates the whole index; tensor data is not read. Exits with status 1 on a damaged file.
func inspectGLW(path: String, json: Bool) throws {
    let file: WeightFile
    do { file = try WeightFile(path: path) } catch {
        printToStderr("glide inspect: \(path): \(error)")
        Foundation.exit(1)
    }
    let meta = (try? JSONValue.parse(file.metadataJSON)) ?? .object([:])
    let quant = meta["quantization"]?["tensors"]
    if json {
        var tensors: [JSONValue] = []
        for t in file.tensors {
            var o: [String: JSONValue] = ["name": .string(t.name), "dtype": .string(t.dtype.description),
                                          "shape": .array(t.shape.map { .int($0) }), "offset": .int(t.offset),
                                          "bytes": .int(t.regionByteCount), "crc32": .string(String(format: "%08x", t.crc32))]
            if let r = quant?[t.name]?["rule"] { o["rule"] = r }
            tensors.append(.object(o))
        }
        let out: JSONValue = .object([
            "format": .string("glw"), "version": .int(Int(file.version)), "alignment": .int(file.alignment),
            "file_size": .int(file.fileSize), "metadata": meta, "tensors": .array(tensors),
            "embedded_files": .array(file.embeddedFiles.map { .object(["name": .string($0.name), "bytes": .int($0.bytes.count)]) }),
            "parameters": .int(file.tensors.reduce(0) { $0 + $1.elementCount }),
        ])
        print(out.encoded)
        return
    }
    print("format      glw version \(file.version), alignment \(file.alignment), \(formatBytes(file.fileSize))")
    print("model       \(file.modelName ?? "(none)")")
    if let p = meta["provenance"], let src = p["source"] {
        print("source      \(src["name"]?.stringValue ?? "?") (\(src["format"]?.stringValue ?? "?"), sha256 \(src["sha256"]?.stringValue ?? "?"))")
        if let c = p["converter"]?.stringValue { print("converter   \(c)") }
    }
    if let q = meta["quantization"] {
        print("quantized   requested \(q["requested"]?.stringValue ?? "?"), policy \(q["policy"]?.stringValue ?? "?")")
    }
    if !file.hyperparameters.isEmpty {
        print("hyperparameters")
        for k in file.hyperparameters.keys.sorted() { print("  \(k) = \(file.hyperparameters[k]!)") }
    }
    for f in file.embeddedFiles { print("embedded    \(f.name) (\(formatBytes(f.bytes.count)))") }
    let width = max(6, file.tensors.map(\.name.count).max() ?? 0)
    print(glwPad("tensor", width) + "  dtype  rule       shape                 " + glwPadLeft("bytes", 11) + "  " + glwPadLeft("offset", 12) + "  crc32")
    var byType: [String: (Int, Int)] = [:]
    for t in file.tensors {
        let rule = quant?[t.name]?["rule"]?.stringValue ?? ""
        let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
        print(glwPad(t.name, width) + "  " + glwPad(t.dtype.description, 5) + "  " + glwPad(rule, 9) + "  " + glwPad(shape, 20) + "  "
              + glwPadLeft(String(t.regionByteCount), 11) + "  " + glwPadLeft(String(t.offset), 12) + "  " + String(format: "%08x", t.crc32))
        let e = byType[t.dtype.description] ?? (0, 0)
        byType[t.dtype.description] = (e.0 + 1, e.1 + t.regionByteCount)
    }
    let params = file.tensors.reduce(0) { $0 + $1.elementCount }
    print("\(file.tensors.count) tensors, \(params) parameters; " + byType.keys.sorted().map { "\($0): \(byType[$0]!.0) tensors \(formatBytes(byType[$0]!.1))" }.joined(separator: ", "))
}

/// `s` padded with spaces on the right to `width` characters.
func glwPad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }
/// `s` padded with spaces on the left to `width` characters.
func glwPadLeft(_ s: String, _ width: Int) -> String { s.count >= width ? s : String(repeating: " ", count: width - s.count) + s }
