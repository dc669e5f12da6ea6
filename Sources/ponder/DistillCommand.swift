import ArgumentParser
import Autograd
import Foundation
import Model
import Runs
import Tasks
import Training

struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distil a trained teacher into a student: rejection-sample the teacher, then SFT (and GRPO) the student.",
        discussion: """
        The teacher answers distill.problems training problems distill.samples_per_problem times each. Only completions \
        that are correct and well formatted are kept (written to RUN/distill/traces.jsonl, counts per family in \
        RUN/distill/stats.json); the student config's SFT stage trains on them instead of the solvers' traces, then its \
        GRPO stage runs as configured (grpo.steps: 0 for pure distillation). --resume reuses the kept traces.
        """)

    @Option(help: "The teacher checkpoint folder, e.g. runs/quickstart/checkpoints/best.") var teacher: String
    @Option(name: .customLong("student-config"), help: "The student's training config, e.g. configs/distill-small.yaml.") var studentConfig: String
    @Option(name: .customLong("run-dir"), help: "Run folder (default: runs/<config name>).") var runDir: String?
    @Option(name: .customLong("set"), help: "Override a key of the student config, e.g. --set distill.samples_per_problem=8.") var overrides: [String] = []
    @Flag(help: "Continue the run folder: reuse its kept traces and its newest checkpoint.") var resume = false
    @Flag(name: .customLong("skip-teacher-eval"), help: "Do not evaluate the teacher on the student's held-out set first.") var skipTeacherEval = false

    func run() throws {
        guard let (cfg, dir, lock) = try Train.prepareRun(config: studentConfig, runDir: runDir, overrides: overrides, resume: resume, communicator: .single) else { return }
        defer { withExtendedLifetime(lock) {} }  // held until the run ends
        let console = TerminalConsole()
        if cfg.threads > 0 { Parallel.threads = cfg.threads }
        var result: DistillResult
        if resume, let saved = try Distill.load(runDirectory: dir) {
            result = saved
            console.message("reusing \(saved.traces.count) kept traces from \(dir.appendingPathComponent(Distill.tracesFile).path)")
        } else {
            result = try collect(cfg, console: console)
            try Distill.save(result, runDirectory: dir)
        }
        print(Distill.table(result))
        if let e = result.teacherEval {
            console.message(String(format: "teacher held-out pass@1 %.3f (format %.3f)", e["eval/pass@1"] ?? 0, e["eval/format"] ?? 0))
        }
        console.message("student: \(result.traces.count) kept completions as its SFT set | run folder: \(dir.path) | \(cfg.sft.steps) SFT + \(cfg.grpo.steps) GRPO steps")
        let trainer = try Trainer(config: cfg, runDirectory: dir, resume: resume, console: console, sftTraces: result.traces)
        console.message("policy: \(trainer.policy.config.parameterCount) parameters, d=\(cfg.model.dModel) L=\(cfg.model.layers)")
        let end = try trainer.run()
        try Summary.printEnd(trainer: trainer, end: end, runDirectory: dir)
        if let t = result.teacherEval?["eval/pass@1"], let s = end["eval/pass@1"] {
            print(String(format: "student held-out pass@1 %.3f = %.0f%% of the teacher's %.3f", s, t > 0 ? 100 * s / t : 0, t))
        }
    }

    /// Loads and checks the teacher, optionally evaluates it, and rejection-samples its completions.
    /// The teacher samples with its own tokenizer, in the student config's prompt format; kept
    /// traces are text, which the student's tokenizer encodes again.
    func collect(_ cfg: TrainConfig, console: TerminalConsole) throws -> DistillResult {
        let loaded = try Checkpoint.load(from: URL(fileURLWithPath: teacher))
        let tokenizer: any Tokenizer
        do {
            tokenizer = try cfg.data.promptFormat.apply(to: loaded.tokenizer)
        } catch {
            throw ValidationError("data.prompt_format: \(error) (for the teacher \(teacher))")
        }
        let maxNew = cfg.distill.maxNewTokens > 0 ? cfg.distill.maxNewTokens : cfg.grpo.maxCompletionLength
        let heldOut = try HeldOutSet.load(directory: URL(fileURLWithPath: cfg.data.datasets))
        let problems = SFT.traces(families: cfg.data.families, levels: cfg.sft.levels,
                                  count: cfg.distill.problems > 0 ? cfg.distill.problems : cfg.sft.numTraces, seed: cfg.seed, heldOut: heldOut)
        let longest = try problems.map { try tokenizer.encodePrompt($0.prompt).count }.max() ?? 0
        guard longest + maxNew <= loaded.policy.config.maxContext else {
            throw ValidationError("the teacher's max_context is \(loaded.policy.config.maxContext) but prompts of \(longest) tokens plus distill.max_new_tokens \(maxNew) need more: lower distill.max_new_tokens")
        }
        var teacherEval: [String: Double]?
        if !skipTeacherEval {
            let report = try Evaluator.evaluate(policy: loaded.policy, tokenizer: tokenizer, problems: try Trainer.evalProblems(cfg),
                                                options: Trainer.evalOptions(cfg))
            teacherEval = report.scalars()
        }
        console.message("teacher \(teacher) (\(loaded.policy.config.parameterCount) parameters) answers \(problems.count) problems × \(cfg.distill.samplesPerProblem) samples")
        var rng = RNG(seed: cfg.seed, stream: "distill")
        let start = Date()
        var result = try Distill.collect(teacher: loaded.policy, tokenizer: tokenizer, problems: problems, config: cfg,
                                         teacherName: teacher, rng: &rng) { done, total in
            console.progress(String(format: "[distill] %ld/%ld problems | %.0fs", done, total, Date().timeIntervalSince(start)), final: done == total)
        }
        result.teacherEval = teacherEval
        return result
    }
}
