// A key written twice in one JSON object: JSONDecoder keeps one and Python's json keeps the other,
// so a dataset line with one means different problems to different tools. Found by one pass over
// the text that tracks, per open object, the keys seen so far.

enum JSONKeys {
    /// The first key that repeats within one object of `text`, or nil (also for text that is not JSON,
    /// which the decoder then reports).
    static func firstDuplicate(in text: String) -> String? {
        var stack: [Set<String>?] = []  // one entry per open container: the keys of an object, nil for an array
        var bytes = Array(text.utf8)[...]
        while let b = bytes.popFirst() {
            switch b {
            case UInt8(ascii: "{"): stack.append([])
            case UInt8(ascii: "["): stack.append(nil)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): if !stack.isEmpty { stack.removeLast() }
            case UInt8(ascii: "\""):
                var raw: [UInt8] = []
                while let c = bytes.popFirst(), c != UInt8(ascii: "\"") {
                    raw.append(c)
                    if c == UInt8(ascii: "\\"), let escaped = bytes.popFirst() { raw.append(escaped) }
                }
                // A string followed by ':' inside an object is a key.
                let rest = bytes.drop { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }
                guard rest.first == UInt8(ascii: ":"), let last = stack.last, var keys = last else { continue }
                let key = String(decoding: raw, as: UTF8.self)
                if keys.contains(key) { return key }
                keys.insert(key)
                stack[stack.count - 1] = keys
            default: continue
            }
        }
        return nil
    }
}
