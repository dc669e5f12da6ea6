// Opening a run folder for training: one writer at a time (RunLock), left-overs of killed runs
// removed, and a --resume that cannot silently change what it resumes: a finished run stays as it
// is unless asked for more GRPO steps, and a config whose architecture differs from the saved one is
// refused, naming the keys.

import Foundation
import Runs

public enum RunFolder {
    /// A run folder ready to train in.
    public struct Opened {
        /// The lock, held until this value goes away (nil on ranks other than the writer).
        public let lock: RunLock?
        /// What was cleaned up: stale temporary and half-deleted checkpoint folders and files.
        public let cleaned: [String]
        /// The run had already finished (only with resume): nothing should be changed.
        public let finished: Bool
    }

    /// Locks `directory` (the writer only), checks it against `config`, and cleans it. Throws when
    /// another process holds the folder, when a fresh run would overwrite one, or when a resume would
    /// change the saved architecture.
    public static func open(_ directory: URL, config: TrainConfig, resume: Bool, isWriter: Bool) throws -> Opened {
        let lock = isWriter ? try RunLock(runDirectory: directory) : nil
        if !resume && FileManager.default.fileExists(atPath: MetricsLog.metricsURL(directory).path) {
            throw ConfigError(file: nil, key: "--run-dir", message: "\(directory.path) already holds a run: pass --resume to continue it, or --run-dir for a new folder")
        }
        let saved = resume ? try? ConfigLoader.load(savedConfigURL(directory)) : nil
        // A finished run goes on only when asked for more GRPO steps than it took (`--set grpo.steps=N`),
        // as a trainer resumed with a larger max_steps does; the schedule is then the new length's.
        if resume, (try? RunStatus.read(from: directory))?.state == .finished,
           config.grpo.steps <= saved?.grpo.steps ?? Int.max {
            return Opened(lock: lock, cleaned: [], finished: true)
        }
        if let saved {
            let changed = architectureChanges(from: saved, to: config)
            if !changed.isEmpty {
                throw ConfigError(file: nil, key: changed.map(\.key).joined(separator: ", "), message:
                    "would change on --resume (" + changed.map { "\($0.key): \($0.old) → \($0.new)" }.joined(separator: "; ")
                    + "), but the checkpoints have the saved architecture; resume without changing them, or train a new --run-dir")
            }
        }
        let cleaned = isWriter ? Checkpoints.cleanStale(in: directory) : []
        return Opened(lock: lock, cleaned: cleaned, finished: false)
    }

    /// The resolved config a run folder keeps.
    public static func savedConfigURL(_ directory: URL) -> URL { directory.appendingPathComponent("config.yaml") }

    /// The model keys (other than `from` and `init_std`, which only matter for a fresh start) whose
    /// values differ, as dotted YAML names with their old and new values.
    static func architectureChanges(from old: TrainConfig, to new: TrainConfig) -> [(key: String, old: String, new: String)] {
        var a = old.model, b = new.model
        (a.from, b.from, a.initStd, b.initStd) = ("", "", 0, 0)
        guard a != b else { return [] }
        func flat(_ v: Any, _ prefix: String) -> [String: String] {
            guard let d = v as? [String: Any] else { return [prefix: "\(v)"] }
            return d.reduce(into: [:]) { out, kv in out.merge(flat(kv.value, prefix + "." + kv.key)) { x, _ in x } }
        }
        let fa = flat(ConfigLoader.plain(a), "model"), fb = flat(ConfigLoader.plain(b), "model")
        return fa.keys.sorted().compactMap { k in fa[k] == fb[k] ? nil : (k, fa[k] ?? "-", fb[k] ?? "-") }
    }
}
