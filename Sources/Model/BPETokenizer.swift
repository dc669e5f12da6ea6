// A byte-level BPE tokenizer read from a Hugging Face `tokenizer.json` (GPT-2, SmolLM2, Llama-3,
// Qwen2), giving the ids the `tokenizers` library gives for `encode(text, add_special_tokens=False)`
// and the text its `decode` gives.
//
// Encoding, as `tokenizers` does it:
//   1. added tokens are split out of the raw text, leftmost-longest (those marked normalized
//      are matched after step 2, in the normalized text);
//   2. each remaining piece is normalized (none, or NFC as in Qwen2);
//   3. pre-tokenizers split it: Digits, a Split on one of the known regexes, and ByteLevel, which
//      (with use_regex) splits on the GPT-2 regex and maps every UTF-8 byte to a printable character
//      (Radford et al. 2019, `bytes_to_unicode`);
//   4. BPE merges each piece's characters, always the lowest-ranked adjacent pair, leftmost first.
// Decoding maps token strings back to bytes (ByteLevel decoder) and reads them as UTF-8, replacing
// invalid sequences with U+FFFD.
//
// The regexes are not run by a regex engine: `PretokenizerPattern` is a hand-written scanner for the
// three patterns in use, with Oniguruma's meaning of \s (White_Space), \p{L} and \p{N} (general
// categories), verified against `tokenizers` on a hard corpus (Tests/Fixtures/bpe). Any other
// pattern or component is an error naming the file and the key.

import Basics
import Foundation

/// A byte-level BPE tokenizer with the `tokenizers` library's behaviour.
public struct BPETokenizer: Tokenizer {
    /// Token string → id of the BPE model's vocabulary.
    let vocab: [String: Int]
    /// id → token string (model vocabulary and added tokens).
    let tokenOfID: [Int: String]
    /// (left id, right id) packed as left << 32 | right → (rank, merged id).
    let merges: [UInt64: (rank: Int32, id: Int32)]
    /// Whole pieces found in the vocabulary skip the merges (Llama-3's `ignore_merges`).
    let ignoreMerges: Bool
    let normalizeNFC: Bool
    let pretokenizers: [Pretokenizer]
    /// Added tokens: content, id, special, normalized.
    let added: [AddedToken]
    let specialIDs: Set<Int>
    /// Added-token ids by content.
    let addedID: [String: Int]
    /// Byte b's printable character, and back.
    let byteChar: [Unicode.Scalar]
    let charByte: [Unicode.Scalar: UInt8]
    /// The raw tokenizer.json, saved unchanged into checkpoints.
    public let fileData: Data
    /// The folder's tokenizer_config.json, if any, saved unchanged into checkpoints.
    public var configData: Data?

    public let vocabSize: Int
    public let bos: Int
    public let eos: Int
    public let pad: Int
    /// Prepended to plain prompts: BOS when the file's post-processor adds one (Llama-3), else none.
    public let promptPrefix: [Int]
    /// Every id that ends a completion: the EOS ids, chat end-of-turn tokens, and `</answer>` when it
    /// is a single added token.
    public let stopTokens: Set<Int32>

    struct AddedToken {
        var content: String
        var scalars: [Unicode.Scalar]
        var id: Int
        var special: Bool
        var normalized: Bool
    }

    enum Pretokenizer {
        case split(PretokenizerPattern)
        case digits(individual: Bool)
        case byteLevel(regex: Bool)
    }

    // MARK: Loading

    /// Reads `tokenizer.json` at `url`. `eos` ids come from the model's config.json /
    /// generation_config.json (the first is `eos`); `bos` and `pad` likewise, when set.
    public static func load(from url: URL, eos: [Int] = [], bos: Int? = nil, pad: Int? = nil) throws -> BPETokenizer {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.invalidFile(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try BPETokenizer(data: data, file: url.path, eos: eos, bos: bos, pad: pad)
    }

    /// Parses tokenizer.json bytes; errors name `file` and the key at fault.
    /// Long on purpose: it reads the file section by section (model, normalizer, pre-tokenizer, decoder,
    /// byte table, merges, added tokens, special ids), each check naming its key, in the order HF writes them.
    public init(data: Data, file: String = "tokenizer.json", eos eosIDs: [Int] = [], bos bosID: Int? = nil, pad padID: Int? = nil) throws {
        func fail(_ key: String, _ reason: String) -> TokenizerError {
            .invalidFile(path: file, reason: "\(key) \(reason)")
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TokenizerError.invalidFile(path: file, reason: "is not a JSON object")
        }
        fileData = data
        guard let model = root["model"] as? [String: Any] else { throw fail("model", "is missing") }
        guard (model["type"] as? String) == "BPE" else {
            throw fail("model.type", "is \(model["type"] ?? "missing"); Ponder reads byte-level \"BPE\" models")
        }
        if let d = model["dropout"], !(d is NSNull) { throw fail("model.dropout", "is set; BPE dropout is not supported (use null)") }
        if (model["byte_fallback"] as? Bool) == true { throw fail("model.byte_fallback", "is true; only byte-level BPE is supported") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[key] as? String, !s.isEmpty { throw fail("model.\(key)", "is \"\(s)\"; only empty affixes are supported") }
        }
        ignoreMerges = (model["ignore_merges"] as? Bool) ?? false
        guard let v = model["vocab"] as? [String: Int] else { throw fail("model.vocab", "must map strings to ids") }
        vocab = v

        // Normalizer: none or NFC.
        func normalizer(_ n: Any?, key: String) throws -> Bool {
            guard let n = n as? [String: Any] else { return false }
            switch n["type"] as? String {
            case "NFC": return true
            case "Sequence":
                let parts = n["normalizers"] as? [Any] ?? []
                return try parts.enumerated().map { try normalizer($1, key: "\(key).normalizers.\($0)") }.contains(true)
            default: throw fail(key + ".type", "is \(n["type"] ?? "missing"); Ponder supports no normalizer or NFC")
            }
        }
        normalizeNFC = try normalizer(root["normalizer"], key: "normalizer")

        // Pre-tokenizers: Digits, Split (known regexes), then ByteLevel last.
        func pretokenizer(_ p: [String: Any], key: String) throws -> [Pretokenizer] {
            switch p["type"] as? String {
            case "Sequence":
                let list = p["pretokenizers"] as? [[String: Any]] ?? []
                return try list.enumerated().flatMap { try pretokenizer($1, key: "\(key).pretokenizers.\($0)") }
            case "ByteLevel":
                if (p["add_prefix_space"] as? Bool) == true {
                    throw fail(key + ".add_prefix_space", "is true; Ponder supports ByteLevel without a prefix space")
                }
                return [.byteLevel(regex: (p["use_regex"] as? Bool) ?? true)]
            case "Digits":
                return [.digits(individual: (p["individual_digits"] as? Bool) ?? false)]
            case "Split":
                guard let pattern = (p["pattern"] as? [String: Any])?["Regex"] as? String else {
                    throw fail(key + ".pattern", "must be a {\"Regex\": …} pattern")
                }
                guard let known = PretokenizerPattern(regex: pattern) else {
                    throw fail(key + ".pattern.Regex", "is \(JSONText.string(pattern)); Ponder knows the GPT-2, Llama-3 and Qwen2 patterns only")
                }
                guard (p["behavior"] as? String) == "Isolated", (p["invert"] as? Bool) != true else {
                    throw fail(key + ".behavior", "must be \"Isolated\" with invert false")
                }
                return [.split(known)]
            default:
                throw fail(key + ".type", "is \(p["type"] ?? "missing"); Ponder supports Sequence, Split, Digits and ByteLevel")
            }
        }
        guard let pre = root["pre_tokenizer"] as? [String: Any] else {
            throw fail("pre_tokenizer", "is missing; a byte-level BPE needs a ByteLevel pre-tokenizer")
        }
        pretokenizers = try pretokenizer(pre, key: "pre_tokenizer")
        guard case .byteLevel? = pretokenizers.last,
              pretokenizers.dropLast().allSatisfy({ if case .byteLevel = $0 { return false } else { return true } })
        else { throw fail("pre_tokenizer", "must end with one ByteLevel pre-tokenizer") }
        guard let decoder = root["decoder"] as? [String: Any], (decoder["type"] as? String) == "ByteLevel" else {
            throw fail("decoder.type", "is \((root["decoder"] as? [String: Any])?["type"] ?? "missing"); Ponder supports the ByteLevel decoder")
        }

        // Byte ↔ printable character (GPT-2's bytes_to_unicode).
        var chars = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            chars[b] = Unicode.Scalar(printable ? UInt32(b) : 256 + n)!
            if !printable { n += 1 }
        }
        byteChar = chars
        charByte = Dictionary(uniqueKeysWithValues: chars.enumerated().map { ($1, UInt8($0)) })
        for (b, c) in chars.enumerated() where v[String(c)] == nil {
            throw fail("model.vocab", "lacks the byte-level token \(JSONText.string(String(c))) (byte \(b)); every byte needs a token")
        }

        // Merges: "a b" strings (tokenizers < 0.20) or ["a", "b"] pairs.
        guard let rawMerges = model["merges"] as? [Any] else { throw fail("model.merges", "must be a list") }
        var m: [UInt64: (rank: Int32, id: Int32)] = [:]
        m.reserveCapacity(rawMerges.count)
        for (rank, entry) in rawMerges.enumerated() {
            let pair: [String]
            if let s = entry as? String {
                pair = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            } else {
                pair = entry as? [String] ?? []
            }
            guard pair.count == 2, let a = v[pair[0]], let b = v[pair[1]], let ab = v[pair[0] + pair[1]] else {
                throw fail("model.merges.\(rank)", "is \(entry); a merge must join two vocabulary tokens into a third")
            }
            let key = UInt64(a) << 32 | UInt64(b)
            if m[key] == nil { m[key] = (Int32(rank), Int32(ab)) }
        }
        merges = m

        // Added tokens.
        var addedTokens: [AddedToken] = []
        for (i, t) in ((root["added_tokens"] as? [[String: Any]]) ?? []).enumerated() {
            guard let content = t["content"] as? String, let id = t["id"] as? Int, !content.isEmpty else {
                throw fail("added_tokens.\(i)", "needs a non-empty content and an id")
            }
            for key in ["single_word", "lstrip", "rstrip"] where (t[key] as? Bool) == true {
                throw fail("added_tokens.\(i).\(key)", "is true for \(JSONText.string(content)); Ponder supports false only")
            }
            addedTokens.append(AddedToken(content: content, scalars: Array(content.unicodeScalars), id: id,
                                          special: (t["special"] as? Bool) ?? false, normalized: (t["normalized"] as? Bool) ?? false))
        }
        added = addedTokens
        specialIDs = Set(addedTokens.filter(\.special).map(\.id))
        let addedByName = Dictionary(addedTokens.map { ($0.content, $0.id) }, uniquingKeysWith: { a, _ in a })
        addedID = addedByName
        var byID = Dictionary(v.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        for t in addedTokens { byID[t.id] = t.content }
        tokenOfID = byID
        vocabSize = (byID.keys.max() ?? -1) + 1

        // Special ids: from the model config when given, else the usual token names.
        func named(_ names: [String]) -> Int? { names.compactMap { addedByName[$0] ?? v[$0] }.first }
        let eosList = eosIDs.isEmpty ? [named(["<|endoftext|>", "</s>", "<|end_of_text|>", "<|eos|>"])].compactMap { $0 } : eosIDs
        guard let firstEOS = eosList.first else {
            throw fail("added_tokens", "has no end-of-sequence token and config.json sets no eos_token_id")
        }
        eos = firstEOS
        pad = padID ?? firstEOS
        // BOS: what the post-processor prepends (Llama-3's TemplateProcessing), else the config's.
        var prefix: [Int] = []
        if let post = root["post_processor"] as? [String: Any] {
            let single = (post["type"] as? String) == "TemplateProcessing" ? post["single"] as? [[String: Any]] : nil
            if let first = single?.first?["SpecialToken"] as? [String: Any], let name = first["id"] as? String, let id = addedByName[name] ?? v[name] {
                prefix = [id]
            }
        }
        promptPrefix = prefix
        bos = prefix.first ?? bosID ?? firstEOS
        var stops = Set(eosList.map(Int32.init))
        for name in ["<|im_end|>", "<|eot_id|>", "</answer>"] { if let id = addedByName[name] { stops.insert(Int32(id)) } }
        stopTokens = stops
    }

    // MARK: Encoding

    public func encode(_ text: String) throws -> [Int] {
        var ids: [Int] = []
        // Non-normalized added tokens on the raw text; then normalize; then normalized added tokens.
        for (piece, id) in splitAdded(Array(text.unicodeScalars), normalized: false) {
            if let id { ids.append(id); continue }
            let normalized = normalizeNFC ? Array(String(String.UnicodeScalarView(piece)).precomposedStringWithCanonicalMapping.unicodeScalars) : piece
            for (inner, innerID) in splitAdded(normalized, normalized: true) {
                if let innerID { ids.append(innerID); continue }
                for word in pretokenize(inner) { ids += bpe(word) }
            }
        }
        return ids
    }

    /// Splits `s` around added tokens (leftmost-longest) whose `normalized` flag is `normalized`:
    /// pieces of text with nil, tokens with their id.
    func splitAdded(_ s: [Unicode.Scalar], normalized: Bool) -> [([Unicode.Scalar], Int?)] {
        let candidates = added.filter { $0.normalized == normalized }
        if candidates.isEmpty || s.isEmpty { return s.isEmpty ? [] : [(s, nil)] }
        let firsts = Set(candidates.map { $0.scalars[0] })
        var out: [([Unicode.Scalar], Int?)] = []
        var start = 0, i = 0
        while i < s.count {
            if firsts.contains(s[i]) {
                var best: AddedToken?
                for t in candidates where t.scalars.count > (best?.scalars.count ?? 0) && s[i...].starts(with: t.scalars) { best = t }
                if let best {
                    if start < i { out.append((Array(s[start..<i]), nil)) }
                    out.append(([], best.id))
                    i += best.scalars.count
                    start = i
                    continue
                }
            }
            i += 1
        }
        if start < s.count { out.append((Array(s[start...]), nil)) }
        return out
    }

    /// Runs the pre-tokenizers; returns the words as byte-level characters.
    func pretokenize(_ s: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var pieces = [s]
        for p in pretokenizers {
            switch p {
            case .split(let pattern):
                pieces = pieces.flatMap { piece in pattern.split(piece).map { Array(piece[$0]) } }
            case .digits(let individual):
                pieces = pieces.flatMap { Self.splitDigits($0, individual: individual) }
            case .byteLevel(let regex):
                if regex { pieces = pieces.flatMap { piece in PretokenizerPattern.gpt2.split(piece).map { Array(piece[$0]) } } }
                pieces = pieces.map { piece in
                    String(String.UnicodeScalarView(piece)).utf8.map { byteChar[Int($0)] }
                }
            }
        }
        return pieces.filter { !$0.isEmpty }
    }

    /// The Digits pre-tokenizer: each digit alone, or each run of digits, isolated.
    static func splitDigits(_ s: [Unicode.Scalar], individual: Bool) -> [[Unicode.Scalar]] {
        var out: [[Unicode.Scalar]] = []
        var cur: [Unicode.Scalar] = []
        var curIsDigit = false
        for c in s {
            let d = c.isNumber
            if d && individual || d != curIsDigit, !cur.isEmpty {
                out.append(cur)
                cur = []
            }
            cur.append(c)
            curIsDigit = d
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    /// BPE on one word: merge the lowest-ranked adjacent pair (leftmost on ties) until none merges.
    func bpe(_ word: [Unicode.Scalar]) -> [Int] {
        if ignoreMerges, let id = vocab[String(String.UnicodeScalarView(word))] { return [id] }
        var sym = word.map { Int32(vocab[String($0)]!) }  // every byte character is in the vocabulary (checked on load)
        while sym.count > 1 {
            var bestRank = Int32.max, bestAt = -1, bestID: Int32 = 0
            for i in 0..<(sym.count - 1) {
                if let m = merges[UInt64(UInt32(sym[i])) << 32 | UInt64(UInt32(sym[i + 1]))], m.rank < bestRank {
                    (bestRank, bestAt, bestID) = (m.rank, i, m.id)
                }
            }
            if bestAt < 0 { break }
            sym[bestAt] = bestID
            sym.remove(at: bestAt + 1)
        }
        return sym.map(Int.init)
    }

    // MARK: Decoding

    public func decode(_ ids: [Int], skipSpecial: Bool) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard let token = tokenOfID[id] else { continue }
            if skipSpecial && specialIDs.contains(id) { continue }
            // ByteLevel decoder: a token whose characters all map to bytes gives those bytes, any
            // other token (an added token such as "\n\n") its own UTF-8.
            var mapped: [UInt8] = []
            var ok = true
            for c in token.unicodeScalars {
                guard let b = charByte[c] else { ok = false; break }
                mapped.append(b)
            }
            bytes += ok ? mapped : Array(token.utf8)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The id of an added or vocabulary token, if any.
    public func id(of token: String) -> Int? { addedID[token] ?? vocab[token] }

    /// Writes the tokenizer.json it was read from, unchanged.
    public func save(to url: URL) throws {
        try AtomicFile.write(fileData, to: url)
    }

    /// Writes the folder's original tokenizer_config.json (`configData`), or a minimal one naming EOS
    /// and PAD so that `transformers.AutoTokenizer` loads the folder.
    public func saveConfig(to url: URL) throws {
        let minimal = "{\"tokenizer_class\":\"PreTrainedTokenizerFast\",\"eos_token\":\(JSONText.string(tokenOfID[eos] ?? "")),"
            + "\"pad_token\":\(JSONText.string(tokenOfID[pad] ?? "")),\"clean_up_tokenization_spaces\":false}\n"
        try AtomicFile.write(configData ?? Data(minimal.utf8), to: url)
    }
}

extension Unicode.Scalar {
    /// Oniguruma's \p{L}: general category L*.
    var isLetter: Bool {
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// \p{N}: general category N* (also Rust's `char::is_numeric`, which the Digits pre-tokenizer uses).
    var isNumber: Bool {
        switch properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// \s: the White_Space property.
    var isSpace: Bool { properties.isWhitespace }

    /// [^\s\p{L}\p{N}]
    var isOther: Bool { !isSpace && !isLetter && !isNumber }

    var isCRLF: Bool { self == "\r" || self == "\n" }
}

/// The pre-tokenizer regexes Ponder knows, as hand-written scanners with the same leftmost-first,
/// greedy-with-backtracking matches Oniguruma finds.
public enum PretokenizerPattern: Sendable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (GPT-2; ByteLevel's own).
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Llama-3's pattern with `\p{N}` (single digits) for `\p{N}{1,3}`.
    case qwen2

    static let regexes: [(String, PretokenizerPattern)] = [
        (#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#, .gpt2),
        (#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#, .llama3),
        (#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#, .qwen2),
    ]

    /// The pattern whose regex source is `regex`, if known.
    public init?(regex: String) {
        guard let found = Self.regexes.first(where: { $0.0 == regex }) else { return nil }
        self = found.1
    }

    /// Split with behaviour Isolated: the matches and the gaps between them, in order.
    func split(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0, gap = 0
        while i < s.count {
            if let end = match(s, at: i) {
                if gap < i { out.append(gap..<i) }
                out.append(i..<end)
                i = end
                gap = end
            } else {
                i += 1
            }
        }
        if gap < s.count { out.append(gap..<s.count) }
        return out
    }

    /// End of the match starting at `i`, or nil.
    func match(_ s: [Unicode.Scalar], at i: Int) -> Int? {
        let n = s.count
        func run(_ from: Int, _ p: (Unicode.Scalar) -> Bool) -> Int {
            var e = from
            while e < n && p(s[e]) { e += 1 }
            return e
        }
        if let e = contraction(s, at: i, caseInsensitive: self != .gpt2) { return e }
        let c = s[i]
        switch self {
        case .gpt2:
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            for cls in [\Unicode.Scalar.isLetter, \.isNumber, \.isOther] {
                if c == " " && i + 1 < n && s[i + 1][keyPath: cls] { return run(i + 1) { $0[keyPath: cls] } }
                if c[keyPath: cls] { return run(i) { $0[keyPath: cls] } }
            }
        case .llama3, .qwen2:
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if !c.isCRLF && !c.isLetter && !c.isNumber && i + 1 < n && s[i + 1].isLetter { return run(i + 1) { $0.isLetter } }
            if c.isLetter { return run(i) { $0.isLetter } }
            // `\p{N}{1,3}` / `\p{N}`
            if c.isNumber { return min(run(i) { $0.isNumber }, i + (self == .llama3 ? 3 : 1)) }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            if c == " " && i + 1 < n && s[i + 1].isOther { return run(run(i + 1) { $0.isOther }) { $0.isCRLF } }
            if c.isOther { return run(run(i) { $0.isOther }) { $0.isCRLF } }
            // `\s*[\r\n]+`: the whitespace run up to its last CR or LF.
            if c.isSpace, let last = (i..<run(i) { $0.isSpace }).last(where: { s[$0].isCRLF }) { return last + 1 }
        }
        guard c.isSpace else { return nil }
        // `\s+(?!\S)`: the run, or all but its last character when a non-space follows; else `\s+`.
        let e = run(i) { $0.isSpace }
        if e == n { return e }
        return e - 1 > i ? e - 1 : e
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive (Unicode simple case folding: ſ folds to s).
    func contraction(_ s: [Unicode.Scalar], at i: Int, caseInsensitive: Bool) -> Int? {
        guard s[i] == "'", i + 1 < s.count else { return nil }
        func fold(_ c: Unicode.Scalar) -> Unicode.Scalar {
            guard caseInsensitive else { return c }
            if c == "\u{17F}" { return "s" }
            return c.value < 128 ? Unicode.Scalar(UInt8(c.value)).lowercasedASCII : c
        }
        for suffix in ["s", "t", "re", "ve", "m", "ll", "d"] {
            let u = Array(suffix.unicodeScalars)
            guard i + 1 + u.count <= s.count else { continue }
            if (0..<u.count).allSatisfy({ fold(s[i + 1 + $0]) == u[$0] }) { return i + 1 + u.count }
        }
        return nil
    }
}

extension Unicode.Scalar {
    fileprivate var lowercasedASCII: Unicode.Scalar {
        (65...90).contains(value) ? Unicode.Scalar(value + 32)! : self
    }
}
