import ArgumentParser
import Autograd
import Foundation
import Model
import Runs
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train from a YAML config: cold-start SFT, then GRPO, with held-out evals and checkpoints.")

    @Argument(help: "The config file, e.g. configs/quickstart.yaml.") var config: String
    @Option(name: .customLong("run-dir"), help: "Run folder (default: runs/<config name>).") var runDir: String?
    @Option(name: .customLong("set"), help: "Override a key, e.g. --set grpo.beta=0.02 (repeatable).") var overrides: [String] = []
    @Flag(help: "Continue from the run folder's newest complete checkpoint (a finished run trains on when --set grpo.steps asks for more).") var resume = false

    /// Loads the config and readies its run folder (runs/<config name> unless given): locks it,
    /// removes what killed runs left there, refuses to start over an existing run without --resume
    /// or to resume with another architecture, and writes the resolved config. Under mpirun every
    /// rank calls this, and only the writer (rank 0) locks and touches the folder. Returns nil when
    /// `--resume` finds the run finished (after saying so): there is nothing to do.
    static func prepareRun(config: String, runDir: String?, overrides: [String], resume: Bool,
                           communicator comm: Communicator) throws -> (TrainConfig, URL, RunLock?)? {
        let url = URL(fileURLWithPath: config)
        let cfg = try ConfigLoader.load(url, overrides: overrides)
        let name = url.deletingPathExtension().lastPathComponent
        let dir = URL(fileURLWithPath: runDir ?? "runs/\(name)")
        let opened = try RunFolder.open(dir, config: cfg, resume: resume, isWriter: comm.isWriter)
        if opened.finished {
            if comm.isWriter { print("\(dir.path) has finished: nothing to resume (its report: ponder report \(dir.path); to train it on, add --set grpo.steps=N with more GRPO steps than it took)") }
            return nil
        }
        if !opened.cleaned.isEmpty {
            print("removed what an interrupted run left in \(dir.path): \(opened.cleaned.joined(separator: ", "))")
        }
        comm.barrier()  // every rank has looked before rank 0 starts writing
        if comm.isWriter {
            try AtomicFile.write(Data(ConfigLoader.yaml(cfg).utf8), to: RunFolder.savedConfigURL(dir))
        }
        return (cfg, dir, opened.lock)
    }

    func run() throws {
        // Under mpirun every rank runs this command; rank 0 alone writes the run folder and the terminal.
        let comm = try Communicator.world()
        guard let (cfg, dir, lock) = try Self.prepareRun(config: config, runDir: runDir, overrides: overrides, resume: resume, communicator: comm) else { return }
        defer { withExtendedLifetime(lock) {} }  // held until training ends
        let console = comm.isWriter ? TerminalConsole() : nil
        console?.message("run folder: \(dir.path) | \(cfg.sft.steps) SFT + \(cfg.grpo.steps) GRPO steps | families: \(cfg.data.families.joined(separator: ", "))")
        if comm.size > 1 {
            console?.message("data parallel: \(comm.size) ranks, \(cfg.grpo.promptsPerStep) prompts per GRPO step in all | \(comm.libraryVersion.split(separator: ",").first ?? "")")
        }
        let trainer = try Trainer(config: cfg, runDirectory: dir, resume: resume, console: console, communicator: comm)
        console?.message("policy: \(trainer.policy.config.parameterCount) parameters, d=\(cfg.model.dModel) L=\(cfg.model.layers)")
        console?.message("cpu: \(cpuDescription())")
        console?.message("kernels: training GEMM \(NativeKernels.gemmName), OpenBLAS \(BLAS.info.kernel) (\(BLAS.info.reason)); decoding \(NativeKernels.name); matmul precision \(BLAS.precision.rawValue)\(BLAS.precision == .bf16 ? " (\(MatmulPrecision.bf16Unit ?? ""))" : "")")
        let end = try trainer.run()
        comm.finalize()  // only after success: a rank that throws exits without it, and mpirun ends the job
        guard comm.isWriter else { return }
        try Summary.printEnd(trainer: trainer, end: end, runDirectory: dir)
    }
}

/// The start-vs-end table printed at the end of a run.
enum Summary {
    /// The end of a run on the terminal: the table, the reward and pass@1 curves, the report path.
    static func printEnd(trainer: Trainer, end: [String: Double], runDirectory dir: URL) throws {
        print(Summary.table(start: trainer.state.startEval ?? [:], end: end))
        let rewards = trainer.rewardHistory.map { (x: Double($0.step), y: $0.reward) }
        let pass = trainer.passHistory.map { (x: Double($0.step), y: $0.passAt1) }
        let tty = TerminalChart.isTTY()
        if !rewards.isEmpty {
            print(TerminalChart.render([ChartSeries(name: "reward", points: rewards)], title: "GRPO reward", unicode: tty, color: tty))
        }
        if pass.count > 1 {
            print(TerminalChart.render([ChartSeries(name: "eval/pass@1", points: pass)], title: "held-out pass@1", unicode: tty, color: tty))
        }
        print("report: \(try Report.write(runDirectory: dir).path)")
        print(String(format: "peak memory: %.0f MiB", peakResidentMiB()))
    }

    static func table(start: [String: Double], end: [String: Double]) -> String {
        let keys = (Set(start.keys).union(end.keys)).filter { $0.hasSuffix("/pass@1") || $0 == "eval/format" }
            .filter { !$0.contains("/L") || $0.split(separator: "/").count == 4 }
            .sorted { a, b in (a == "eval/pass@1" ? "" : a) < (b == "eval/pass@1" ? "" : b) }
        func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return left ? s + fill : fill + s
        }
        func num(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "-" }
        var lines = ["", pad("held-out (SFT → GRPO)", 32, left: true) + pad("start", 8) + pad("end", 8) + pad("delta", 9)]
        for k in keys {
            let s = start[k], e = end[k]
            let d = (s != nil && e != nil) ? String(format: "%+.3f", e! - s!) : "-"
            lines.append(pad(k, 32, left: true) + pad(num(s), 8) + pad(num(e), 8) + pad(d, 9))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Progress on the terminal: one rewritten line on a TTY, a line every N steps otherwise.
final class TerminalConsole: TrainerConsole {
    let tty = isatty(1) == 1
    func progress(_ line: String, final: Bool) {
        if tty {
            print("\r\u{1B}[2K" + line, terminator: final ? "\n" : "")
        } else if final {
            print(line)
        }
        fflush(stdout)
    }

    func message(_ text: String) {
        print(text)
        fflush(stdout)
    }
}
