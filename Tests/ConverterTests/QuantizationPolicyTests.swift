import Foundation
import XCTest
import TestSupport
import WeightFormat
@testable import Converter

/// glw-policy-2's rules (Formats/glw.md) and the `activation_bits` it records for int8 tensors.
final class QuantizationPolicyTests: XCTestCase {
    func rule(_ name: String, _ shape: [Int] = [512, 512]) -> QuantizationRule {
        QuantizationPolicy.rule(name: name, shape: shape, isFloat: true)
    }

    func testEarlyTextBlocksStayF16InInt8Files() {
        for i in 0..<QuantizationPolicy.earlyTextBlocks {
            XCTAssertEqual(rule("transformer.resblocks.\(i).mlp.c_fc.weight", [2048, 512]), .earlyText)
            XCTAssertEqual(rule("transformer.resblocks.\(i).attn.c_qkv.weight", [1536, 512]), .earlyText)
        }
        XCTAssertEqual(rule("transformer.resblocks.4.mlp.c_fc.weight"), .matrix)
        XCTAssertEqual(rule("transformer.resblocks.10.attn.c_proj.weight"), .matrix)   // not block 1
        XCTAssertEqual(rule("transformer.resblocks.0.mlp.c_fc.bias", [2048]), .vector)
        XCTAssertEqual(rule("transformer.resblocks.0.ln_1.weight", [512]), .vector)
        XCTAssertEqual(rule("transformer.resblocks.0.attn.c_qkv.weight", [48, 16]), .tiny)
        XCTAssertEqual(rule("transformer_proj.weight"), .matrix)
        XCTAssertEqual(rule("blocks.block_0.f_attn.f_q.w"), .matrix)                  // CLIP: no text-early rule
        XCTAssertEqual(QuantizationPolicy.storedType(rule: .earlyText, target: .int8), .f16)
        for t in [WeightDType.f32, .f16, .bf16] { XCTAssertEqual(QuantizationPolicy.storedType(rule: .earlyText, target: t), t) }
        XCTAssertEqual(QuantizationPolicy.name, "glw-policy-2")
    }

    func testActivationBitsByLayerRole() {
        for name in ["input_blocks.1.0.in_layers.2.weight", "output_blocks.3.0.out_layers.3.weight",
                     "output_blocks.0.0.skip_connection.weight", "middle_block.1.qkv.weight",
                     "input_blocks.7.1.encoder_kv.weight", "output_blocks.9.1.proj_out.weight",
                     "input_blocks.3.0.op.weight", "output_blocks.2.1.conv.weight"] {
            XCTAssertEqual(QuantizationPolicy.activationBits(name: name), 8, name)
        }
        for name in ["input_blocks.1.0.emb_layers.1.weight", "time_embed.0.weight", "time_embed.2.weight",
                     "transformer_proj.weight", "transformer.resblocks.7.attn.c_qkv.weight",
                     "transformer.resblocks.7.mlp.c_proj.weight", "blocks.block_0.f_attn.f_q.w",
                     "input_blocks.1.0.in_layers.2.bias"] {
            XCTAssertEqual(QuantizationPolicy.activationBits(name: name), 16, name)
        }
        XCTAssertEqual(Int8ActivationChoice.all8.bits(name: "time_embed.0.weight"), 8)
        XCTAssertEqual(Int8ActivationChoice.all16.bits(name: "middle_block.1.qkv.weight"), 16)
        XCTAssertEqual(Int8ActivationChoice(rawValue: "16"), .all16)
        XCTAssertNil(Int8ActivationChoice(rawValue: "12"))
    }

    func testActivationBitsRoundTripThroughAFile() throws {
        let dir = NSTemporaryDirectory() + "glw-policy-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for choice in Int8ActivationChoice.allCases {
            var o = ConversionOptions()
            o.target = .int8
            o.configPath = TestPaths.fixture("weightformat/tiny_unet_options.json").path
            o.int8Activations = choice
            let out = dir + "/tiny-\(choice.rawValue).glw"
            _ = try convertCheckpoint(source: TestPaths.fixture("weightformat/tiny_unet.pt").path, destination: out, options: o)
            let f = try WeightFile(path: out)
            let int8 = f.tensors.filter { $0.dtype == .int8 }.map(\.name)
            XCTAssertFalse(int8.isEmpty)
            XCTAssertEqual(Set(f.int8ActivationBits.keys), Set(int8), "every int8 tensor and only those")
            for name in int8 { XCTAssertEqual(f.int8ActivationBits[name], choice.bits(name: name), name) }
            let meta = try JSONValue.parse(f.metadataJSON)
            XCTAssertEqual(meta["quantization"]?["policy"]?.stringValue, "glw-policy-2")
            XCTAssertEqual(meta["quantization"]?["int8_activations"]?.stringValue, choice.rawValue)
            if choice == .role { XCTAssertEqual(Set(f.int8ActivationBits.values), [8, 16]) }
        }
        // Non-int8 files record no activation bits.
        var o = ConversionOptions()
        o.target = .bf16
        o.configPath = TestPaths.fixture("weightformat/tiny_unet_options.json").path
        _ = try convertCheckpoint(source: TestPaths.fixture("weightformat/tiny_unet.pt").path, destination: dir + "/bf16.glw", options: o)
        XCTAssertEqual(try WeightFile(path: dir + "/bf16.glw").int8ActivationBits, [:])
    }
}
