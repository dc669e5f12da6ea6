// Line charts drawn as text, for `ponder curves` in a terminal: braille dots (2×4 per character cell)
// coloured per series on a colour terminal, one marker glyph per series otherwise, plain ASCII when the
// output is a file or a dumb terminal.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One line of a chart: a run's values of one metric.
public struct ChartSeries {
    /// The legend label.
    public var name: String
    /// The points in drawing order; a non-finite x or y breaks the line.
    public var points: [(x: Double, y: Double)]

    /// A series with the given label and points.
    public init(name: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.points = points
    }
}

/// The colours given to series in order, the same in the terminal and in SVG.
public enum Palette {
    /// SVG colours (matplotlib's tab10, the TensorBoard look).
    public static let svg = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#17becf", "#8c564b", "#e377c2"]
    /// The nearest ANSI foreground colour codes.
    static let ansi = [34, 33, 32, 31, 35, 36, 93, 95]
}

/// Text line charts for terminals.
public enum TerminalChart {
    private static let asciiMarkers: [Character] = ["*", "o", "+", "x", "#", "@", "%", "&"]
    private static let unicodeMarkers: [Character] = ["●", "○", "◆", "■", "▲", "◇", "□", "△"]

    /// Whether standard output is a terminal that can show colour and Unicode (not a file, a pipe, or
    /// TERM=dumb).
    public static func isTTY() -> Bool {
        isatty(1) != 0 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    /// Draws `series` on shared axes: a title line, `height` rows of plot with y tick labels, an x axis with
    /// tick labels, and a legend, each line at most `width` columns. With `unicode`, lines are braille dots
    /// (when colour or a single series tells them apart) or one Unicode marker per series; otherwise ASCII
    /// markers. With `color`, each series is drawn in its ANSI colour.
    /// Long on purpose: axes, ticks, plot rows and legend share the layout computed at the top.
    public static func render(
        _ series: [ChartSeries], title: String, width: Int = 72, height: Int = 14, unicode: Bool, color: Bool
    ) -> String {
        let finite = series.flatMap { $0.points.filter { $0.x.isFinite && $0.y.isFinite } }
        guard !finite.isEmpty else { return "\(title)\n  (no data)\n" }
        let (xmin, xmax) = paddedRange(finite.map(\.x))
        let (ymin, ymax) = paddedRange(finite.map(\.y))
        let rows = max(height, 2)
        let braille = unicode && (color || series.count == 1)

        let tickCount = min(rows, max(2, rows / 4 + 1))
        let tickRows = (0..<tickCount).map { Int((Double($0) * Double(rows - 1) / Double(tickCount - 1)).rounded()) }
        let yLabels = Dictionary(
            uniqueKeysWithValues: tickRows.map { row in
                (row, formatTick(ymax - Double(row) / Double(rows - 1) * (ymax - ymin), span: ymax - ymin))
            })
        let labelWidth = yLabels.values.map(\.count).max() ?? 0
        let columns = max(8, width - labelWidth - 1)

        // Rasterise: in braille mode a cell holds 2×4 dots; in marker mode a cell is one pixel.
        let pixelWidth = braille ? columns * 2 : columns
        let pixelHeight = braille ? rows * 4 : rows
        var dots = [[UInt8]](repeating: [UInt8](repeating: 0, count: columns), count: rows)
        var owner = [[Int]](repeating: [Int](repeating: -1, count: columns), count: rows)
        func plot(_ px: Int, _ py: Int, _ s: Int) {
            let (row, column) = braille ? (py / 4, px / 2) : (py, px)
            if braille { dots[row][column] |= brailleBit(px % 2, py % 4) }
            owner[row][column] = s
        }
        for (s, line) in series.enumerated() {
            var previous: (Int, Int)?
            for point in line.points {
                guard point.x.isFinite && point.y.isFinite else {
                    previous = nil
                    continue
                }
                let px = Int(((point.x - xmin) / (xmax - xmin) * Double(pixelWidth - 1)).rounded())
                let py = Int(((ymax - point.y) / (ymax - ymin) * Double(pixelHeight - 1)).rounded())
                if let previous {
                    for (x, y) in bresenham(from: previous, to: (px, py)) { plot(x, y, s) }
                } else {
                    plot(px, py, s)
                }
                previous = (px, py)
            }
        }

        let markers = unicode ? unicodeMarkers : asciiMarkers
        func paint(_ text: String, _ s: Int) -> String {
            color ? "\u{1B}[\(Palette.ansi[s % Palette.ansi.count])m\(text)\u{1B}[0m" : text
        }
        var lines = [title]
        for row in 0..<rows {
            let label = yLabels[row] ?? ""
            var line = String(repeating: " ", count: labelWidth - label.count) + label
            line += yLabels[row] == nil ? (unicode ? "│" : "|") : (unicode ? "┤" : "+")
            var column = 0
            while column < columns {
                let s = owner[row][column]
                var run = ""
                while column < columns && owner[row][column] == s {
                    if s < 0 {
                        run += " "
                    } else if braille {
                        run.unicodeScalars.append(Unicode.Scalar(0x2800 + UInt32(dots[row][column]))!)
                    } else {
                        run.append(markers[s % markers.count])
                    }
                    column += 1
                }
                line += s < 0 ? run : paint(run, s)
            }
            lines.append(trimmingTrailingSpaces(line))
        }

        // The x axis: ticks at the first, middle and last columns, labelled with the x there.
        let tickColumns = [0, columns / 2, columns - 1]
        var axis = Array(String(repeating: unicode ? "─" : "-", count: columns))
        for column in tickColumns { axis[column] = unicode ? "┬" : "+" }
        lines.append(String(repeating: " ", count: labelWidth) + (unicode ? "└" : "+") + String(axis))
        var xLine = [Character](repeating: " ", count: labelWidth + 1 + columns)
        var free = 0
        for column in tickColumns {
            let pixel = column == columns - 1 ? pixelWidth - 1 : (braille ? column * 2 : column)
            let value = xmin + Double(pixel) / Double(pixelWidth - 1) * (xmax - xmin)
            let label = Array(formatTick(value, span: xmax - xmin, integral: finite.allSatisfy { $0.x == $0.x.rounded() }))
            let start = min(max(labelWidth + 1 + column - label.count / 2, free), xLine.count - label.count)
            guard start >= free else { continue }
            xLine.replaceSubrange(start..<start + label.count, with: label)
            free = start + label.count + 1
        }
        lines.append(trimmingTrailingSpaces(String(xLine)))

        let legend = series.enumerated().map { s, line in
            paint(braille ? "━━" : String(markers[s % markers.count]), s) + " " + line.name
        }
        lines.append(String(repeating: " ", count: labelWidth + 1) + legend.joined(separator: "   "))
        return lines.joined(separator: "\n") + "\n"
    }

    /// The bit of braille dot (column, row) within its cell (Unicode's braille patterns block).
    private static func brailleBit(_ column: Int, _ row: Int) -> UInt8 {
        let bits: [[UInt8]] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]]
        return bits[column][row]
    }

    /// The pixels of the straight line between two pixels, both ends included.
    private static func bresenham(from a: (Int, Int), to b: (Int, Int)) -> [(Int, Int)] {
        var (x, y) = a
        let dx = abs(b.0 - x)
        let dy = -abs(b.1 - y)
        let sx = x < b.0 ? 1 : -1
        let sy = y < b.1 ? 1 : -1
        var error = dx + dy
        var pixels: [(Int, Int)] = []
        while true {
            pixels.append((x, y))
            if x == b.0 && y == b.1 { return pixels }
            let doubled = 2 * error
            if doubled >= dy {
                error += dy
                x += sx
            }
            if doubled <= dx {
                error += dx
                y += sy
            }
        }
    }

    /// The smallest and largest value, widened when they are equal so that the axis has a span.
    static func paddedRange(_ values: [Double]) -> (Double, Double) {
        let low = values.min()!
        let high = values.max()!
        guard low == high else { return (low, high) }
        let pad = low == 0 ? 1 : abs(low) * 0.1
        return (low - pad, high + pad)
    }

    /// A tick label with as many decimals as the axis span needs: 2 for a span of 1, none for 100.
    static func formatTick(_ value: Double, span: Double, integral: Bool = false) -> String {
        if integral && span >= 10 { return String(Int(value.rounded())) }
        if abs(value) >= 1e6 { return String(format: "%.3g", value) }
        let decimals = max(0, min(6, 2 - Int(floor(log10(max(span, 1e-12))))))
        let text = String(format: "%.\(decimals)f", value)
        return text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
    }

    private static func trimmingTrailingSpaces(_ line: String) -> String {
        var line = line
        while line.last == " " { line.removeLast() }
        return line
    }
}
