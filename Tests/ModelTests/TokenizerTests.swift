import Foundation
import XCTest

import Model

final class TokenizerTests: XCTestCase {
    let tokenizer = CharTokenizer()
    /// A completion in Ponder's layout (DESIGN.md, Conventions).
    let trace = "<|bos|>What is 12+30?\n<think>\n12+30=42\n</think>\n<answer>\n42\n</answer><|eos|>"

    func testVocabularyLayout() {
        XCTAssertEqual(tokenizer.vocabSize, 7 + 96)
        XCTAssertEqual([tokenizer.pad, tokenizer.bos, tokenizer.eos], [0, 1, 2])
        XCTAssertEqual(tokenizer.tags, ReasoningTags(thinkStart: 3, thinkEnd: 4, answerStart: 5, answerEnd: 6))
        XCTAssertEqual(try tokenizer.encode("\n !~"), [7, 8, 9, 102])
    }

    func testRoundTripIsExact() throws {
        let ids = try tokenizer.encode(trace)
        XCTAssertEqual(ids.first, tokenizer.bos)
        XCTAssertEqual(ids.last, tokenizer.eos)
        XCTAssertEqual(tokenizer.decode(ids), trace)
        let every = String(String.UnicodeScalarView(CharTokenizer.defaultAlphabet))
        XCTAssertEqual(tokenizer.decode(try tokenizer.encode(every + every)), every + every)
    }

    func testTagsAreSingleTokensMatchedGreedily() throws {
        let t = tokenizer.tags
        XCTAssertEqual(
            try tokenizer.encode("<think></think><answer></answer>"),
            [t.thinkStart, t.thinkEnd, t.answerStart, t.answerEnd])
        let chars = { (s: String) in try s.unicodeScalars.map { try self.tokenizer.encode(String($0))[0] } }
        // A tag inside longer text is still one token; near misses stay characters.
        XCTAssertEqual(try tokenizer.encode("<<think>>"), try chars("<") + [t.thinkStart] + chars(">"))
        XCTAssertEqual(try tokenizer.encode("<thinker>"), try chars("<thinker>"))
        XCTAssertEqual(try tokenizer.encode("</answer"), try chars("</answer"))
    }

    func testUnknownCharacterIsATypedError() {
        XCTAssertThrowsError(try tokenizer.encode("ab\u{E9}c")) { error in
            XCTAssertEqual(error as? TokenizerError, .unknownCharacter("\u{E9}", offset: 2))
            XCTAssertEqual("\(error)", "character \"\u{E9}\" (U+00E9) at offset 2 is not in the tokenizer's alphabet")
        }
        XCTAssertThrowsError(try tokenizer.encode("a\tb"))
    }

    func testCodePointsNotGraphemes() throws {
        // "\r\n" is one Swift Character but two code points, as the tokenizers library splits it.
        let crlf = CharTokenizer(alphabet: "\r\nab")
        XCTAssertEqual(crlf.alphabet, ["\n", "\r", "a", "b"])
        XCTAssertEqual(try crlf.encode("a\r\nb").count, 4)
        XCTAssertEqual(crlf.decode(try crlf.encode("a\r\nb")), "a\r\nb")
    }

    func testDecodeSkipsSpecialTokensButKeepsTags() throws {
        let ids = try tokenizer.encode(trace)
        let expected = "What is 12+30?\n<think>\n12+30=42\n</think>\n<answer>\n42\n</answer>"
        XCTAssertEqual(tokenizer.decode(ids + [tokenizer.pad, tokenizer.pad], skipSpecial: true), expected)
        XCTAssertEqual(tokenizer.decode([-1, 5, 999]), "<answer>", "out-of-range ids are skipped")
    }

    func testSaveLoadRoundTrip() throws {
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("tokenizer.json")
        let small = CharTokenizer(alphabet: "0123456789+-=\n \"\\")
        try small.save(to: url)
        let loaded = try CharTokenizer.load(from: url)
        XCTAssertEqual(loaded, small)
        XCTAssertEqual(try loaded.encode("12 + \"3\"\\\n"), try small.encode("12 + \"3\"\\\n"))
        try tokenizer.save(to: url)
        XCTAssertEqual(try CharTokenizer.load(from: url), tokenizer)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["tokenizer.json"])
    }

    func testLoadRejectsForeignFiles() throws {
        let url = try temporaryDirectory().appendingPathComponent("tokenizer.json")
        func rejects(_ json: String, _ reason: String, line: UInt = #line) throws {
            try Data(json.utf8).write(to: url)
            XCTAssertThrowsError(try CharTokenizer.load(from: url), line: line) { error in
                XCTAssertEqual(error as? TokenizerError, .invalidFile(path: url.path, reason: reason), line: line)
            }
        }
        let added = CharTokenizer.addedTokens.enumerated().map { "\"\($1)\":\($0)" }.joined(separator: ",")
        try rejects("{", "not a tokenizer.json with a model.vocab")
        try rejects(#"{"model":{"type":"WordLevel"}}"#, "not a tokenizer.json with a model.vocab (at model.vocab)")
        try rejects(#"{"model":{"type":"BPE","vocab":{}}}"#, "model type is BPE; a character tokenizer needs WordLevel")
        try rejects(#"{"model":{"type":"WordLevel","vocab":{"a":0}}}"#, "added token <|pad|> must have id 0")
        try rejects(
            #"{"model":{"type":"WordLevel","vocab":{\#(added),"x":3}}}"#,
            "vocab has 8 entries with ids below 7; only the added tokens may use them")
        try rejects(
            #"{"model":{"type":"WordLevel","vocab":{\#(added),"ab":7}}}"#,
            "vocab entry \"ab\" (id 7) is not one character")
        try rejects(
            #"{"model":{"type":"WordLevel","vocab":{\#(added),"a":8}}}"#,
            "vocab ids must be contiguous; id 8 found where 7 was expected")
        try rejects(
            #"{"model":{"type":"WordLevel","vocab":{\#(added),"b":7,"a":8}}}"#,
            "alphabet characters must be in code-point order without duplicates")
    }
}
