// The trainer's log of a run: metrics.jsonl, the TensorBoard event file beside it, and completions.jsonl.
// Every record is written with one write(2), so a reader (`ponder curves`, `ponder report`) sees it at
// once, and a killed run loses at most the line being written.

import Foundation

/// One sampled completion, as logged to completions.jsonl.
public struct CompletionRecord: Equatable {
    /// The optimizer step that sampled it.
    public var step: Int
    /// The prompt text.
    public var prompt: String
    /// The sampled completion text.
    public var completion: String
    /// The reference answer.
    public var answer: String
    /// The task family.
    public var family: String
    /// The difficulty level.
    public var level: Int
    /// Each reward function's score, by function name.
    public var rewards: [String: Double]
    /// The weighted sum of the rewards.
    public var reward: Double
    /// The group-relative advantage.
    public var advantage: Double

    /// A record with the given fields.
    public init(
        step: Int, prompt: String, completion: String, answer: String, family: String, level: Int,
        rewards: [String: Double], reward: Double, advantage: Double
    ) {
        self.step = step
        self.prompt = prompt
        self.completion = completion
        self.answer = answer
        self.family = family
        self.level = level
        self.rewards = rewards
        self.reward = reward
        self.advantage = advantage
    }

    /// One JSON line: fields in declaration order, reward names sorted, no trailing newline.
    public var jsonLine: String {
        JSONText.object([
            ("step", String(step)), ("prompt", JSONText.string(prompt)),
            ("completion", JSONText.string(completion)), ("answer", JSONText.string(answer)),
            ("family", JSONText.string(family)), ("level", String(level)),
            ("rewards", JSONText.object(rewards.sorted { $0.key < $1.key }.map { ($0.key, JSONText.number($0.value)) })),
            ("reward", JSONText.number(reward)), ("advantage", JSONText.number(advantage)),
        ])
    }

    /// Reads a record from a parsed JSON object; nil when `step` is missing. Absent texts are empty and
    /// absent or null numbers are NaN.
    init?(json: [String: Any]) {
        guard let step = JSONText.step(json["step"]) else { return nil }
        self.init(
            step: step, prompt: json["prompt"] as? String ?? "", completion: json["completion"] as? String ?? "",
            answer: json["answer"] as? String ?? "", family: json["family"] as? String ?? "",
            level: JSONText.step(json["level"]) ?? 0,
            rewards: (json["rewards"] as? [String: Any] ?? [:]).mapValues(JSONText.double),
            reward: JSONText.double(json["reward"]), advantage: JSONText.double(json["advantage"]))
    }
}

/// Writes a run's metrics.jsonl, its TensorBoard events and its completions.jsonl.
///
/// Not safe to call from several threads at once; the trainer logs from its step loop.
public final class MetricsLog {
    /// The run folder.
    public let runDirectory: URL
    private let metrics: FileDescriptor
    private let completions: FileDescriptor
    private let events: TensorBoardWriter

    /// The metrics file of a run folder.
    public static func metricsURL(_ runDirectory: URL) -> URL { runDirectory.appendingPathComponent("metrics.jsonl") }
    /// The completions file of a run folder.
    public static func completionsURL(_ runDirectory: URL) -> URL {
        runDirectory.appendingPathComponent("completions.jsonl")
    }

    /// The TensorBoard tag of a metric: GRPO and eval metrics keep their names ("reward", "eval/pass@1"),
    /// other stages are prefixed ("sft/loss"), so SFT and GRPO losses are separate charts.
    public static func tag(name: String, stage: String) -> String {
        stage == "grpo" || stage == "eval" ? name : "\(stage)/\(name)"
    }

    /// Opens the log of the run in `runDirectory`, creating the folder if needed.
    ///
    /// Without `resumeAfterStep`, a new run starts: metrics.jsonl and completions.jsonl are emptied and
    /// earlier event files removed. With it, the run continues after that step (its last checkpoint):
    /// records of later steps, logged before the crash, are dropped from all three (each file is rewritten
    /// atomically), so a resumed run's files hold what an uninterrupted run's would.
    public init(runDirectory: URL, resumeAfterStep: Int? = nil) throws {
        self.runDirectory = runDirectory
        do {
            try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw RunsError.io(path: runDirectory.path, reason: "cannot create the run folder")
        }
        let oldEvents = TensorBoardWriter.eventFiles(in: runDirectory)
        var keptEvents: [TensorBoardEvent] = []
        if let step = resumeAfterStep {
            try MetricsLog.keepLines(of: MetricsLog.metricsURL(runDirectory), throughStep: step)
            try MetricsLog.keepLines(of: MetricsLog.completionsURL(runDirectory), throughStep: step)
            for url in oldEvents {
                // A crash can cut the last record short; TFRecord.records stops before it.
                keptEvents += try TensorBoardWriter.readEvents(at: url).filter { $0.fileVersion == nil && $0.step <= step }
            }
        }
        metrics = try FileDescriptor(appendingTo: MetricsLog.metricsURL(runDirectory), truncate: resumeAfterStep == nil)
        completions = try FileDescriptor(
            appendingTo: MetricsLog.completionsURL(runDirectory), truncate: resumeAfterStep == nil)
        events = try TensorBoardWriter(directory: runDirectory)
        for event in keptEvents { try events.write(event) }
        for url in oldEvents { try? FileManager.default.removeItem(at: url) }
    }

    /// Appends one line to metrics.jsonl, `{"step":…,"stage":…,` then the scalars sorted by name, and
    /// writes the same scalars to the event file under their tags. Non-finite values are written as null.
    public func log(step: Int, stage: String, _ scalars: [String: Double]) throws {
        let sorted = scalars.sorted { $0.key < $1.key }
        let line = JSONText.object(
            [("step", String(step)), ("stage", JSONText.string(stage))] + sorted.map { ($0.key, JSONText.number($0.value)) })
        try metrics.append(Data((line + "\n").utf8))
        try events.write(step: step, scalars: sorted.map { (MetricsLog.tag(name: $0.key, stage: stage), $0.value) })
    }

    /// Appends one line to completions.jsonl.
    public func logCompletion(_ record: CompletionRecord) throws {
        try completions.append(Data((record.jsonLine + "\n").utf8))
    }

    /// Closes the files; later calls to `log` throw.
    public func close() {
        metrics.close()
        completions.close()
        events.close()
    }

    /// Rewrites a JSONL file atomically with only the lines whose "step" is at most `step`. A line that
    /// does not parse (a record cut short by the crash) is dropped.
    private static func keepLines(of url: URL, throughStep step: Int) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else { return }
        let text = String(decoding: data, as: UTF8.self)
        var kept = ""
        for line in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            guard let object = JSONText.parseObject(line), let lineStep = JSONText.step(object["step"]),
                lineStep <= step
            else { continue }
            kept += line + "\n"
        }
        try AtomicWrite.write(Data(kept.utf8), to: url)
    }
}
