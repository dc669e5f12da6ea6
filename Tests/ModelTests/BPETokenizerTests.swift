// Byte-level BPE against the `tokenizers` library. The fixtures in Tests/Fixtures/bpe were made by
// `scripts/make_hf_fixtures.py tokenizers Tests/Fixtures/bpe` (tokenizers 0.23): three tokenizers
// trained on one corpus in the SmolLM2 (Digits + GPT-2 regex), Llama-3 and Qwen2 (NFC) styles, and
// the ids and decodings `tokenizers` gives for a hard test corpus. These tests always run; the
// cross-check below regenerates everything with the live library when the venv exists.

import Basics
import Foundation
import XCTest

import Model

final class BPETokenizerTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/bpe")

    struct Row: Decodable {
        var text: String
        var ids: [Int]
        var decoded: String
        var skipped: String
    }

    func check(directory: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try JSONDecoder().decode([String: [Row]].self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))
        XCTAssertEqual(Set(expected.keys), ["gpt2", "llama3", "qwen2"])
        for (style, rows) in expected.sorted(by: { $0.key < $1.key }) {
            let tok = try BPETokenizer.load(from: directory.appendingPathComponent("\(style).json"))
            for row in rows {
                let ids = try tok.encode(row.text)
                XCTAssertEqual(ids, row.ids, "\(style): \(JSONText.string(row.text))", file: file, line: line)
                XCTAssertEqual(tok.decode(row.ids), row.decoded, "\(style): \(JSONText.string(row.text))", file: file, line: line)
                XCTAssertEqual(tok.decode(row.ids, skipSpecial: true), row.skipped, "\(style) skip: \(JSONText.string(row.text))", file: file, line: line)
            }
        }
    }

    func testMatchesTokenizersOnCommittedFixtures() throws {
        try check(directory: Self.fixtures)
    }

    /// Retrains the fixtures with the installed `tokenizers` and checks again.
    func testMatchesLiveTokenizersLibrary() throws {
        let python = try Python.require(["tokenizers"])
        let dir = try temporaryDirectory()
        let script = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/make_hf_fixtures.py")
        try python.run(arguments: [script.path, "tokenizers", dir.path])
        try check(directory: dir)
    }

    func testRoundTripAndSpecialTokens() throws {
        let tok = try BPETokenizer.load(from: Self.fixtures.appendingPathComponent("qwen2.json"))
        let text = "<|im_start|>user\nWhat is 2+2? It's 😀 café\n<|im_end|>\n<think>x</think><answer>4</answer>"
        let ids = try tok.encode(text)
        XCTAssertEqual(tok.decode(ids), text)
        XCTAssertEqual(tok.id(of: "<|im_start|>").map { ids.contains($0) }, true)
        XCTAssertEqual(tok.decode(ids, skipSpecial: true), "user\nWhat is 2+2? It's 😀 café\n\n<think>x</think><answer>4</answer>",
                       "special tokens skipped, added (non-special) tags kept")
        XCTAssertEqual(tok.eos, tok.id(of: "<|endoftext|>"))
        XCTAssertTrue(tok.stopTokens.contains(Int32(tok.id(of: "<|im_end|>")!)))
        XCTAssertTrue(tok.stopTokens.contains(Int32(tok.id(of: "</answer>")!)))
        XCTAssertEqual(tok.promptPrefix, [], "no post-processor: prompts get no BOS")
        XCTAssertEqual(tok.vocabSize, 704)
    }

    func testUnsupportedComponentsAreErrorsNamingTheKey() throws {
        let base = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("llama3.json"))) as! [String: Any]
        func reason(_ edit: (inout [String: Any]) -> Void) -> String {
            var j = base
            edit(&j)
            do {
                _ = try BPETokenizer(data: try! JSONSerialization.data(withJSONObject: j), file: "x/tokenizer.json")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(reason { $0["normalizer"] = ["type": "NFKC"] }.contains("x/tokenizer.json: normalizer.type"))
        XCTAssertTrue(reason {
            var pre = $0["pre_tokenizer"] as! [String: Any]
            var list = pre["pretokenizers"] as! [[String: Any]]
            list[0]["pattern"] = ["Regex": "\\w+"]
            pre["pretokenizers"] = list
            $0["pre_tokenizer"] = pre
        }.contains("pre_tokenizer.pretokenizers.0.pattern.Regex"))
        XCTAssertTrue(reason {
            var m = $0["model"] as! [String: Any]
            m["type"] = "Unigram"
            $0["model"] = m
        }.contains("model.type"))
        XCTAssertTrue(reason { $0["decoder"] = ["type": "Metaspace"] }.contains("decoder.type"))
        XCTAssertTrue(reason {
            var a = $0["added_tokens"] as! [[String: Any]]
            a[0]["lstrip"] = true
            $0["added_tokens"] = a
        }.contains("added_tokens.0.lstrip"))
        XCTAssertEqual(reason { _ in }, "no error")
    }
}
