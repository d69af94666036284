// `glide inspect FILE [--json]`: what a checkpoint holds, without loading or running anything from it.
import ArgumentParser
import Checkpoint
import Converter
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors and metadata of a PyTorch checkpoint (.pt) or a .glw weight file, or how a PNG was made.",
        discussion: """
        For a torch.save file (zip archive or the older legacy format) this prints the format variant, the
        archive's top folder, one line per tensor (name, dtype, shape, elements, bytes), totals, the pickle
        globals the file references and any metadata stored beside the state dict. Nothing in the file is
        executed: the pickle is read by a data-only decoder that accepts only an allowlist of globals.
        A file that is refused exits with status 1 and one line saying what was refused and where.

        For a PNG written by glide sample, upsample or inpaint it prints the generation record stored in its \
        glide:* text chunks (prompt, seed, steps, sampler, guidance, each model's file name, SHA-256 and weight \
        type) and whether `glide sample --replay` can make it again.

        Examples:
          glide inspect sample.png
          glide inspect models/base.pt
          glide inspect models/base.pt --json | jq .parameters
        """)

    @Argument(help: "The file to inspect: a torch.save checkpoint (.pt), a .glw weight file or a PNG made by glide.")
    var file: String

    @Flag(help: "Print one JSON object (format, archive_prefix, tensors [{name, dtype, shape, ...}], parameters, bytes, ...).")
    var json = false

    @Flag(help: "Also check the CRC-32 of every stored zip entry (reads the whole file; slower).")
    var verify = false

    func run() throws {
        let kind: InspectedFileKind
        do { kind = try sniffFileKind(path: file) } catch { fail("\(file): \(error)") }
        switch kind {
        case .torch:
            try inspectTorchCheckpoint(path: file, json: json, verify: verify)
        case .glw:
            try inspectGLW(path: file, json: json)   // Sources/GlideCLI/InspectGLW.swift
        case .png:
            do { try RecordIO.inspect(png: file, json: json) } catch { fail("\(file): \(error)") }   // GenerationRecordIO.swift
        case .unknown(let head):
            fail("\(file): not a torch checkpoint, .glw file or PNG (starts with \(head))")
        }
    }
}

/// What the first bytes of a file say it is.
enum InspectedFileKind: Equatable {
    /// A torch.save file: zip archive ("PK") or legacy pickle (0x80, PROTO).
    case torch
    /// Our own weight format (magic starting "GLW").
    case glw
    /// A PNG image (its text chunks may hold a generation record).
    case png
    /// Anything else; carries the first bytes in hex.
    case unknown(String)
}

/// Reads the first bytes of `path` to decide which inspector applies.
func sniffFileKind(path: String) throws -> InspectedFileKind {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw CheckpointError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
    }
    defer { try? handle.close() }
    let head = [UInt8]((try handle.read(upToCount: 8)) ?? Data())
    if head.count >= 3 && head[0] == 0x47 && head[1] == 0x4C && head[2] == 0x57 { return .glw }   // "GLW"
    if head.count >= 4 && head[0] == 0x89 && head[1] == 0x50 && head[2] == 0x4E && head[3] == 0x47 { return .png }   // "\x89PNG"
    if head.count >= 2 && head[0] == 0x50 && head[1] == 0x4B { return .torch }                   // "PK"
    if head.count >= 1 && head[0] == 0x80 { return .torch }                                      // pickle PROTO
    return .unknown(head.isEmpty ? "nothing: the file is empty" : head.map { String(format: "%02x", $0) }.joined(separator: " "))
}

/// Prints one line to stderr and exits with status 1.
private func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("glide inspect: " + message + "\n").utf8))
    Foundation.exit(1)
}

/// Opens `path` as a torch checkpoint and prints its contents as a table or one JSON object.
func inspectTorchCheckpoint(path: String, json: Bool, verify: Bool) throws {
    let ckpt: TorchCheckpoint
    do {
        ckpt = try TorchCheckpoint(path: path, verifyChecksums: verify)
    } catch let error as CheckpointError {
        fail("\(path): refused: \(error)")
    }
    var out = ""
    if json {
        out = torchCheckpointJSON(ckpt)
    } else {
        out = torchCheckpointTable(ckpt)
    }
    FileHandle.standardOutput.write(Data(out.utf8))
}

// MARK: - Table

private func torchCheckpointTable(_ c: TorchCheckpoint) -> String {
    var s = ""
    func line(_ label: String, _ value: String) { s += label.padding(toLength: 14, withPad: " ", startingAt: 0) + value + "\n" }
    line("file", "\(c.path) (\(grouped(c.fileSize)) bytes)")
    switch c.format {
    case .zip: line("format", "torch.save zip archive, top folder '\(c.archivePrefix ?? "")', \(c.zipEntries.count) entries")
    case .legacy: line("format", "torch.save legacy (pre-1.6) pickle stream")
    }
    if !c.archiveInfo.isEmpty {
        line("records", c.archiveInfo.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    }
    line("pickle", "protocol \(c.pickleProtocol)")
    line("state dict", c.stateDictKey.map { "under key '\($0)'" } ?? "top level")
    line("globals", c.globalsReferenced.joined(separator: ", "))
    s += "\n"
    let nameWidth = min(max(4, c.tensors.map(\.name.count).max() ?? 0), 72)
    let shapes = c.tensors.map { "[" + $0.shape.map(String.init).joined(separator: ", ") + "]" }
    let shapeWidth = max(5, shapes.map(\.count).max() ?? 0)
    s += "name".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  dtype     "
        + "shape".padding(toLength: shapeWidth, withPad: " ", startingAt: 0) + "  " + pad("numel", 13) + "  " + pad("bytes", 15) + "\n"
    for (t, shape) in zip(c.tensors, shapes) {
        var row = t.name.padding(toLength: max(nameWidth, t.name.count), withPad: " ", startingAt: 0) + "  "
        row += t.dtype.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0) + "  "
        row += shape.padding(toLength: shapeWidth, withPad: " ", startingAt: 0) + "  "
        row += pad(grouped(t.elementCount), 13) + "  " + pad(grouped(t.byteCount), 15)
        if !t.isContiguous { row += "  (strided \(t.strides))" }
        s += row + "\n"
    }
    s += "\n"
    line("tensors", grouped(c.tensors.count))
    line("parameters", grouped(c.parameterCount))
    line("bytes", "\(grouped(c.tensorByteCount)) (\(humanBytes(c.tensorByteCount)))")
    line("storages", "\(grouped(c.storageCount)) holding \(grouped(c.storageByteCount)) bytes")
    var counts: [TorchDType: Int] = [:]
    for t in c.tensors { counts[t.dtype, default: 0] += 1 }
    line("dtypes", TorchDType.allCases.compactMap { d in counts[d].map { "\(d.rawValue) x\($0)" } }.joined(separator: ", "))
    if !c.metadataKeys.isEmpty {
        s += "\nmetadata\n"
        for k in c.metadataKeys {
            var v = c.metadata[k]!.description
            if v.count > 200 { v = String(v.prefix(200)) + "..." }
            s += "  \(k) = \(v)\n"
        }
    }
    return s
}

private func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
}

private func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
}

private func humanBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.2f %@", v, units[u])
}

// MARK: - JSON

private func torchCheckpointJSON(_ c: TorchCheckpoint) -> String {
    var j = JSONText()
    j.open("{")
    j.key("file"); j.string(c.path)
    j.key("file_bytes"); j.raw(String(c.fileSize))
    j.key("format"); j.string(c.format.rawValue)
    j.key("archive_prefix"); if let p = c.archivePrefix { j.string(p) } else { j.raw("null") }
    j.key("pickle_protocol"); j.raw(String(c.pickleProtocol))
    j.key("state_dict_key"); if let k = c.stateDictKey { j.string(k) } else { j.raw("null") }
    j.key("records"); j.open("{")
    for r in c.archiveInfo { j.key(r.key); j.string(r.value) }
    j.close("}")
    j.key("globals"); j.open("[")
    for g in c.globalsReferenced { j.item(); j.string(g) }
    j.close("]")
    j.key("tensors"); j.open("[")
    for t in c.tensors {
        j.item()
        j.open("{")
        j.key("name"); j.string(t.name)
        j.key("dtype"); j.string(t.dtype.rawValue)
        j.key("shape"); j.raw("[" + t.shape.map(String.init).joined(separator: ",") + "]")
        j.key("strides"); j.raw("[" + t.strides.map(String.init).joined(separator: ",") + "]")
        j.key("storage"); j.string(t.storageKey)
        j.key("storage_offset"); j.raw(String(t.storageOffset))
        j.key("contiguous"); j.raw(t.isContiguous ? "true" : "false")
        j.key("numel"); j.raw(String(t.elementCount))
        j.key("bytes"); j.raw(String(t.byteCount))
        j.close("}")
    }
    j.close("]")
    j.key("tensor_count"); j.raw(String(c.tensors.count))
    j.key("parameters"); j.raw(String(c.parameterCount))
    j.key("bytes"); j.raw(String(c.tensorByteCount))
    j.key("storages"); j.raw(String(c.storageCount))
    j.key("storage_bytes"); j.raw(String(c.storageByteCount))
    j.key("metadata"); j.open("{")
    for k in c.metadataKeys { j.key(k); j.value(c.metadata[k]!) }
    j.close("}")
    j.close("}")
    return j.text + "\n"
}

/// A tiny JSON emitter that keeps key order.
private struct JSONText {
    var text = ""
    private var needsComma: [Bool] = []

    mutating func open(_ bracket: String) { text += bracket; needsComma.append(false) }
    mutating func close(_ bracket: String) { text += bracket; needsComma.removeLast() }
    mutating func item() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }
    mutating func key(_ k: String) { item(); string(k); text += ":" }
    mutating func raw(_ s: String) { text += s }
    mutating func string(_ s: String) { JSONValue.appendQuoted(s, to: &text) }
    mutating func value(_ v: PickleValue) {
        switch v {
        case .none: raw("null")
        case .bool(let b): raw(b ? "true" : "false")
        case .int(let i): raw(String(i))
        case .bigInt(let bytes): open("{"); key("bigint_le_hex"); string(bytes.map { String(format: "%02x", $0) }.joined()); close("}")
        case .float(let d): if d.isFinite { raw(String(d)) } else { string(String(d)) }
        case .string(let s): string(s)
        case .bytes(let b): open("{"); key("bytes_hex"); string(b.prefix(4096).map { String(format: "%02x", $0) }.joined()); close("}")
        case .list(let items): open("["); for x in items { item(); value(x) }; close("]")
        case .tuple(let items): open("{"); key("tuple"); open("["); for x in items { item(); value(x) }; close("]"); close("}")
        case .dict(let entries):
            let allStrings = entries.allSatisfy { if case .string = $0.key { return true } else { return false } }
            if allStrings {
                open("{")
                for e in entries { if case .string(let k) = e.key { key(k); value(e.value) } }
                close("}")
            } else {
                open("{"); key("pairs"); open("[")
                for e in entries { item(); open("["); item(); value(e.key); item(); value(e.value); close("]") }
                close("]"); close("}")
            }
        case .object(let type, let args):
            open("{"); key("object"); string(type); key("args"); open("["); for x in args { item(); value(x) }; close("]"); close("}")
        case .global(let name): open("{"); key("global"); string(name); close("}")
        case .tensor(let name): open("{"); key("tensor"); string(name); close("}")
        case .storage(let k): open("{"); key("storage"); string(k); close("}")
        }
    }
}
