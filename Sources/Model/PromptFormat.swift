// How a problem becomes a prompt. Ponder's own layout is plain: BOS (when the model has one) +
// problem text + "\n". Chat models imported from Hugging Face expect their chat template; the two
// common ones are written here natively (no Jinja): ChatML (Qwen2, SmolLM2) and Llama-3's headers.
// The assistant turn is left open, so the completion follows it.

import Basics
import Foundation

/// The prompt layout, chosen by the config key `data.prompt_format`.
public enum PromptFormat: String, ConfigChoice {
    /// BOS + text + "\n".
    case plain
    /// ChatML when the tokenizer has `<|im_start|>`, else Llama-3 when it has `<|start_header_id|>`.
    case chat
    /// `<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n`
    case chatml
    /// `<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{text}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n`
    case llama3

    /// `tokenizer` laid out in this format: itself for plain, else a `ChatTokenizer`. Throws when the
    /// tokenizer lacks the template's special tokens.
    public func apply(to tokenizer: any Tokenizer) throws -> any Tokenizer {
        switch self {
        case .plain: return tokenizer
        case .chatml, .llama3: return try ChatTokenizer(base: tokenizer, format: self)
        case .chat:
            if let chat = try? ChatTokenizer(base: tokenizer, format: .chatml) { return chat }
            if let chat = try? ChatTokenizer(base: tokenizer, format: .llama3) { return chat }
            throw PromptFormatError(message: "the tokenizer has neither <|im_start|> (ChatML) nor <|start_header_id|> (Llama-3) as one token; use prompt_format: plain")
        }
    }
}

/// A tokenizer whose prompts follow a chat template, and whose completions end at the end-of-turn
/// token (`<|im_end|>` or `<|eot_id|>`), which is its EOS. Everything else is the base tokenizer's.
public struct ChatTokenizer: Tokenizer {
    /// The tokenizer of the model.
    public let base: any Tokenizer
    /// `.chatml` or `.llama3`.
    public let format: PromptFormat
    let endOfTurn: Int

    /// Checks that `base` encodes the template's markers as single tokens.
    public init(base: any Tokenizer, format: PromptFormat) throws {
        let markers: [String]
        switch format {
        case .chatml: markers = ["<|im_start|>", "<|im_end|>"]
        case .llama3: markers = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
        default: preconditionFailure("ChatTokenizer needs .chatml or .llama3")
        }
        for m in markers {
            guard let ids = try? base.encode(m), ids.count == 1 else {
                throw PromptFormatError(message: "prompt_format \(format.rawValue) needs \(m) as one token, and the tokenizer has none; use prompt_format: plain")
            }
        }
        self.base = base
        self.format = format
        endOfTurn = try base.encode(markers.last!)[0]
    }

    /// The prompt text around `text`.
    public func template(_ text: String) -> String {
        switch format {
        case .llama3:
            return "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n\(text)<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        default:
            return "<|im_start|>user\n\(text)<|im_end|>\n<|im_start|>assistant\n"
        }
    }

    public var vocabSize: Int { base.vocabSize }
    public var bos: Int { base.bos }
    /// The end-of-turn token: SFT ends teacher completions with it.
    public var eos: Int { endOfTurn }
    public var pad: Int { base.pad }
    public var stopTokens: Set<Int32> { base.stopTokens.union([Int32(endOfTurn)]) }
    public var promptPrefix: [Int] { [] }
    public func encode(_ text: String) throws -> [Int] { try base.encode(text) }
    public func encodePrompt(_ text: String) throws -> [Int] { try base.encode(template(text)) }
    public func decode(_ ids: [Int], skipSpecial: Bool) -> String { base.decode(ids, skipSpecial: skipSpecial) }
    public func save(to url: URL) throws { try base.save(to: url) }
}

/// A prompt format the tokenizer cannot express.
public struct PromptFormatError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
