// The Python interpreter the cross-check tests run peers' libraries in (transformers, tokenizers,
// safetensors, peft, TensorBoard): $PONDER_PYTHON, else ~/.ponder-peer/bin/python (the peer venv of
// ../shared/bench/README.md), else python3. A test-support module shared by the test targets, which
// skip their cross-checks when no candidate imports what they need.

import Foundation

public struct PeerPython: CustomStringConvertible {
    /// The interpreter and the arguments that come before the script's.
    public var command: [String]

    public var description: String { command.joined(separator: " ") }

    /// The candidate interpreters, in the order they are tried.
    public static func candidates() -> [PeerPython] {
        let environment = ProcessInfo.processInfo.environment
        return [
            environment["PONDER_PYTHON"].map { [$0] },
            environment["HOME"].map { ["\($0)/.ponder-peer/bin/python"] },
            ["/usr/bin/env", "python3"],
        ].compactMap { $0 }.filter { FileManager.default.isExecutableFile(atPath: $0[0]) }.map(PeerPython.init)
    }

    /// The first candidate that imports all of `modules`, or nil.
    public static func find(importing modules: [String]) -> PeerPython? {
        candidates().first { (try? $0.run(arguments: ["-c", "import " + modules.joined(separator: ", ")])) != nil }
    }

    /// Runs `script` with `arguments` and returns its standard output.
    public func run(script: String, arguments: [String]) throws -> String {
        try run(arguments: ["-c", script] + arguments)
    }

    /// Runs the interpreter and returns standard output; throws with standard error on failure.
    @discardableResult
    public func run(arguments: [String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-python-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (out, err) = (dir.appendingPathComponent("stdout"), dir.appendingPathComponent("stderr"))
        try Data().write(to: out)
        try Data().write(to: err)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = command.dropFirst() + arguments
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(status: process.terminationStatus, stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
        }
        return try String(contentsOf: out, encoding: .utf8)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var status: Int32
        public var stderr: String
        public var description: String { "python exited with \(status):\n\(stderr)" }
    }
}
