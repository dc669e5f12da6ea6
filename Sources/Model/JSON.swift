// Where a JSON decoding error happened, for the config and tokenizer readers' messages.

import Basics
import Foundation

/// Where in the JSON a decoding error happened, outermost key first.
func codingPath(of error: Error) -> [CodingKey] {
    switch error as? DecodingError {
    case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
        return context.codingPath
    case .keyNotFound(let key, let context):
        return context.codingPath + [key]
    default:
        return []
    }
}
