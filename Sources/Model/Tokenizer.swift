// Tokenizers. Ponder's text layout (DESIGN.md, Conventions) needs BOS, EOS, PAD and the four R1 tags
// as single tokens; everything else is characters. `CharTokenizer` is the character-level tokenizer;
// `BPETokenizer` (BPETokenizer.swift) reads an imported model's byte-level BPE, where the tags may be
// plain text.
//
// Text is handled as Unicode scalars (code points), not Swift `Character`s, because the Hugging Face
// `tokenizers` library splits by code point: "\r\n" is one Character but two tokens.

import Basics
import Foundation

/// What the policy, sampler and rewards need from a tokenizer.
public protocol Tokenizer: Sendable {
    /// Number of token ids; ids run from 0 to `vocabSize - 1`.
    var vocabSize: Int { get }
    /// Beginning of sequence: starts every prompt.
    var bos: Int { get }
    /// End of sequence: ends every completion.
    var eos: Int { get }
    /// Padding: fills batches; never attended to.
    var pad: Int { get }
    /// Ids that end a completion: EOS, and `</answer>` where it is one token (the R1 template is
    /// complete there); an imported chat model adds its end-of-turn token.
    var stopTokens: Set<Int32> { get }
    /// Ids that start every plain prompt (BOS, or nothing for models trained without one).
    var promptPrefix: [Int] { get }
    /// Token ids of a problem's prompt; the default is Ponder's plain layout (`promptPrefix` + text + "\n").
    func encodePrompt(_ text: String) throws -> [Int]
    /// The ids of `text`; added tokens (specials and tags) are recognised greedily, longest first.
    /// Adds no BOS or EOS. Throws `TokenizerError.unknownCharacter` for text outside the vocabulary.
    func encode(_ text: String) throws -> [Int]
    /// The text of `ids`. With `skipSpecial`, BOS, EOS and PAD are left out (tags are kept).
    /// Ids outside the vocabulary are skipped, as the `tokenizers` library does.
    func decode(_ ids: [Int], skipSpecial: Bool) -> String
    /// Writes a Hugging Face `tokenizer.json` that `tokenizers.Tokenizer.from_file` loads and that
    /// encodes every text to the same ids.
    func save(to url: URL) throws
}

extension Tokenizer {
    /// The text of `ids`, special tokens included.
    public func decode(_ ids: [Int]) -> String { decode(ids, skipSpecial: false) }
}

/// Token ids of the four R1 tags.
public struct ReasoningTags: Equatable, Sendable {
    /// `<think>`
    public var thinkStart: Int
    /// `</think>`
    public var thinkEnd: Int
    /// `<answer>`
    public var answerStart: Int
    /// `</answer>`: the sampler stops after it.
    public var answerEnd: Int

    public init(thinkStart: Int, thinkEnd: Int, answerStart: Int, answerEnd: Int) {
        self.thinkStart = thinkStart
        self.thinkEnd = thinkEnd
        self.answerStart = answerStart
        self.answerEnd = answerEnd
    }
}

/// A character-level tokenizer over a fixed alphabet, plus seven added tokens.
///
/// The vocabulary is deterministic: ids 0–6 are `<|pad|>`, `<|bos|>`, `<|eos|>`, `<think>`,
/// `</think>`, `<answer>`, `</answer>`; then one id per alphabet character in code-point order.
/// Characters outside the alphabet are an error, not an `<unk>` token: a character-level model
/// should never lose text silently, and the task alphabet is known in advance. The special-token
/// strings themselves are recognised in input text, as `tokenizers` does.
public struct CharTokenizer: Tokenizer, Equatable {
    /// The added tokens in id order; the first three are special (skipped by `decode(skipSpecial:)`).
    public static let addedTokens = ["<|pad|>", "<|bos|>", "<|eos|>", "<think>", "</think>", "<answer>", "</answer>"]
    /// Printable ASCII (0x20–0x7E) plus newline.
    public static let defaultAlphabet: [Unicode.Scalar] = ["\n"] + (0x20...0x7E).map { Unicode.Scalar(UInt8($0)) }

    /// The alphabet, in code-point order, without duplicates.
    public let alphabet: [Unicode.Scalar]
    private let idOfScalar: [Unicode.Scalar: Int]
    /// Added tokens as scalar arrays, longest first, for greedy matching.
    private let matchOrder: [(id: Int, scalars: [Unicode.Scalar])]

    public var vocabSize: Int { Self.addedTokens.count + alphabet.count }
    public var pad: Int { 0 }
    public var bos: Int { 1 }
    public var eos: Int { 2 }
    /// The ids of `<think>`, `</think>`, `<answer>` and `</answer>`.
    public var tags: ReasoningTags { ReasoningTags(thinkStart: 3, thinkEnd: 4, answerStart: 5, answerEnd: 6) }
    /// EOS and `</answer>`.
    public var stopTokens: Set<Int32> { [Int32(eos), Int32(tags.answerEnd)] }
    /// BOS.
    public var promptPrefix: [Int] { [bos] }

    /// A tokenizer over `alphabet` (sorted and deduplicated here).
    public init(alphabet: [Unicode.Scalar] = CharTokenizer.defaultAlphabet) {
        self.alphabet = Array(Set(alphabet)).sorted { $0.value < $1.value }
        let base = Self.addedTokens.count
        idOfScalar = Dictionary(uniqueKeysWithValues: self.alphabet.enumerated().map { ($1, base + $0) })
        matchOrder = Self.addedTokens.enumerated()
            .map { (id: $0, scalars: Array($1.unicodeScalars)) }
            .sorted { $0.scalars.count > $1.scalars.count }
    }

    /// An alphabet containing the characters of `alphabet`, e.g. `"0123456789+-=\n "`.
    public init(alphabet: String) {
        self.init(alphabet: Array(alphabet.unicodeScalars))
    }

    public static func == (a: CharTokenizer, b: CharTokenizer) -> Bool { a.alphabet == b.alphabet }

    public func encode(_ text: String) throws -> [Int] {
        let scalars = Array(text.unicodeScalars)
        var ids: [Int] = []
        ids.reserveCapacity(scalars.count)
        var i = 0
        next: while i < scalars.count {
            // Every added token starts with "<", so most characters skip the scan.
            if scalars[i] == "<" {
                for (id, token) in matchOrder where scalars[i...].starts(with: token) {
                    ids.append(id)
                    i += token.count
                    continue next
                }
            }
            guard let id = idOfScalar[scalars[i]] else {
                throw TokenizerError.unknownCharacter(scalars[i], offset: i)
            }
            ids.append(id)
            i += 1
        }
        return ids
    }

    public func decode(_ ids: [Int], skipSpecial: Bool) -> String {
        var out = String.UnicodeScalarView()
        let base = Self.addedTokens.count
        for id in ids {
            if id >= base && id < vocabSize {
                out.append(alphabet[id - base])
            } else if id >= 0 && id < base && !(skipSpecial && id < 3) {
                out.append(contentsOf: Self.addedTokens[id].unicodeScalars)
            }
        }
        return String(out)
    }

    // MARK: tokenizer.json

    /// The vocabulary as `tokenizer.json`: a WordLevel model over single characters, a Split
    /// pre-tokenizer isolating every code point (`[\s\S]`, which also matches newlines), the added
    /// tokens matched before pre-tokenization, and a Fuse decoder so decoding concatenates tokens.
    public func tokenizerJSON() -> String {
        let tokens = Self.addedTokens + alphabet.map { String($0) }
        let vocab = tokens.enumerated().map { "\(JSONText.string($1)):\($0)" }.joined(separator: ",")
        let added = Self.addedTokens.enumerated().map { id, content in
            "{\"id\":\(id),\"content\":\(JSONText.string(content)),\"single_word\":false,\"lstrip\":false,"
                + "\"rstrip\":false,\"normalized\":false,\"special\":\(id < 3)}"
        }
        return """
            {"version":"1.0","truncation":null,"padding":null,
            "added_tokens":[\(added.joined(separator: ",\n"))],
            "normalizer":null,
            "pre_tokenizer":{"type":"Split","pattern":{"Regex":"[\\\\s\\\\S]"},"behavior":"Isolated","invert":false},
            "post_processor":null,
            "decoder":{"type":"Fuse"},
            "model":{"type":"WordLevel","unk_token":"<|unk|>","vocab":{\(vocab)}}}

            """
    }

    public func save(to url: URL) throws {
        try AtomicFile.write(Data(tokenizerJSON().utf8), to: url)
    }

    /// `tokenizer_config.json`, so that `transformers.AutoTokenizer` knows the BOS, EOS and PAD
    /// tokens and does not "clean up" spaces before punctuation when it decodes.
    public func tokenizerConfigJSON() -> String {
        """
        {"tokenizer_class":"PreTrainedTokenizerFast","bos_token":"<|bos|>","eos_token":"<|eos|>",\
        "pad_token":"<|pad|>","clean_up_tokenization_spaces":false}

        """
    }

    /// Writes `tokenizerConfigJSON()` atomically; it belongs next to `tokenizer.json`.
    public func saveConfig(to url: URL) throws {
        try AtomicFile.write(Data(tokenizerConfigJSON().utf8), to: url)
    }

    /// Loads a `tokenizer.json` written by `save(to:)`, checking that it is a character-level
    /// vocabulary with Ponder's added tokens at ids 0–6 and the alphabet after them in order.
    public static func load(from url: URL) throws -> CharTokenizer {
        func invalid(_ reason: String) -> TokenizerError { .invalidFile(path: url.path, reason: reason) }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw invalid("cannot read: \(error.localizedDescription)")
        }
        let file: TokenizerFile
        do {
            file = try JSONDecoder().decode(TokenizerFile.self, from: data)
        } catch {
            let path = codingPath(of: error).map(\.stringValue).joined(separator: ".")
            throw invalid("not a tokenizer.json with a model.vocab" + (path.isEmpty ? "" : " (at \(path))"))
        }
        guard file.model.type == "WordLevel" else {
            throw invalid("model type is \(file.model.type); a character tokenizer needs WordLevel")
        }
        for (id, content) in addedTokens.enumerated() where file.model.vocab[content] != id {
            throw invalid("added token \(content) must have id \(id)")
        }
        let belowAlphabet = file.model.vocab.values.filter { $0 < addedTokens.count }.count
        guard belowAlphabet == addedTokens.count else {
            throw invalid(
                "vocab has \(belowAlphabet) entries with ids below \(addedTokens.count); "
                    + "only the added tokens may use them")
        }
        let characters = file.model.vocab.filter { $0.value >= addedTokens.count }.sorted { $0.value < $1.value }
        var alphabet: [Unicode.Scalar] = []
        for (expected, (token, id)) in characters.enumerated() {
            let scalars = Array(token.unicodeScalars)
            guard scalars.count == 1 else {
                throw invalid("vocab entry \(JSONText.string(token)) (id \(id)) is not one character")
            }
            guard id == addedTokens.count + expected else {
                throw invalid(
                    "vocab ids must be contiguous; id \(id) found where \(addedTokens.count + expected) was expected")
            }
            alphabet.append(scalars[0])
        }
        let tokenizer = CharTokenizer(alphabet: alphabet)
        guard tokenizer.alphabet == alphabet else {
            throw invalid("alphabet characters must be in code-point order without duplicates")
        }
        return tokenizer
    }

    private struct TokenizerFile: Decodable {
        struct Model: Decodable {
            var type: String
            var vocab: [String: Int]
        }
        var model: Model
    }
}

/// A tokenizer problem a user can cause: text it cannot encode, or a file it cannot load.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// `character` at code-point `offset` is not in the vocabulary.
    case unknownCharacter(Unicode.Scalar, offset: Int)
    /// The file at `path` is not a tokenizer this type can load.
    case invalidFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .unknownCharacter(let scalar, let offset):
            let hex = String(scalar.value, radix: 16, uppercase: true)
            let code = String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            return "character \(JSONText.string(String(scalar))) (U+\(code)) at offset \(offset) "
                + "is not in the tokenizer's alphabet"
        case .invalidFile(let path, let reason):
            return "\(path): \(reason)"
        }
    }
}

extension Tokenizer {
    /// Token ids of a prompt in Ponder's layout (DESIGN.md): BOS + problem text + "\n".
    public func encodePrompt(_ text: String) throws -> [Int] { promptPrefix + (try encode(text + "\n")) }
}
