// Charts as SVG, for `ponder curves --svg` and the report: the same curves as the terminal charts, with
// the raw values drawn faintly behind the smoothed line as TensorBoard does. The text is deterministic
// (fixed number formatting, no timestamps, no ids), so a golden file can pin it.

import Foundation

/// SVG line charts, stacked vertically.
public enum SVGChart {
    private static let margin = (left: 64.0, right: 16.0, top: 30.0, bottom: 34.0)
    /// Lines with at most this many points get a dot on each.
    private static let sparsePoints = 20

    /// The charts stacked in one SVG image, `width` wide and `chartHeight` tall each. `standalone` adds
    /// the XML header and namespace that a .svg file needs; HTML embeds the element without them.
    public static func render(_ charts: [Chart], width: Int = 720, chartHeight: Int = 240, standalone: Bool = true) -> String {
        let height = chartHeight * max(charts.count, 1)
        var out = standalone ? "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" : ""
        out += "<svg\(standalone ? " xmlns=\"http://www.w3.org/2000/svg\"" : "") width=\"\(width)\" height=\"\(height)\""
        out += " viewBox=\"0 0 \(width) \(height)\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n"
        out += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>\n"
        for (index, chart) in charts.enumerated() {
            out += "<g transform=\"translate(0,\(index * chartHeight))\">\n"
            out += panel(chart, width: Double(width), height: Double(chartHeight))
            out += "</g>\n"
        }
        return out + "</svg>\n"
    }

    /// Writes `render(charts)` to `url` atomically.
    public static func write(_ charts: [Chart], to url: URL) throws {
        try AtomicWrite.write(Data(render(charts).utf8), to: url)
    }

    private static func panel(_ chart: Chart, width: Double, height: Double) -> String {
        let left = margin.left
        let right = width - margin.right
        let top = margin.top
        let bottom = height - margin.bottom
        var out = "<text x=\"\(f(left))\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(escape(chart.title))</text>\n"
        for (index, line) in chart.series.enumerated() {
            // The legend sits in the title row, right-aligned, in run order.
            let x = right - Double(chart.series.count - index) * 120
            out += "<line x1=\"\(f(x))\" y1=\"14\" x2=\"\(f(x + 16))\" y2=\"14\" stroke=\"\(color(index))\" stroke-width=\"2\"/>"
            out += "<text x=\"\(f(x + 20))\" y=\"18\">\(escape(line.name))</text>\n"
        }
        let finite = (chart.raw + chart.series).flatMap { $0.points.filter { $0.x.isFinite && $0.y.isFinite } }
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"none\" stroke=\"#999999\"/>\n"
        guard !finite.isEmpty else {
            return out + "<text x=\"\(f((left + right) / 2))\" y=\"\(f((top + bottom) / 2))\" text-anchor=\"middle\" fill=\"#666666\">no data</text>\n"
        }
        let (xLow, xHigh) = TerminalChart.paddedRange(finite.map(\.x))
        var (yLow, yHigh) = TerminalChart.paddedRange(finite.map(\.y))
        let pad = (yHigh - yLow) * 0.05
        yLow -= pad
        yHigh += pad
        func px(_ x: Double) -> Double { left + (x - xLow) / (xHigh - xLow) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - yLow) / (yHigh - yLow) * (bottom - top) }

        let (yTicks, yDecimals) = ticks(yLow, yHigh)
        for y in yTicks {
            out += "<line x1=\"\(f(left))\" y1=\"\(f(py(y)))\" x2=\"\(f(right))\" y2=\"\(f(py(y)))\" stroke=\"#e5e5e5\"/>"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(py(y) + 4))\" text-anchor=\"end\">\(label(y, yDecimals))</text>\n"
        }
        let (xTicks, xDecimals) = ticks(xLow, xHigh)
        for x in xTicks {
            out += "<line x1=\"\(f(px(x)))\" y1=\"\(f(bottom))\" x2=\"\(f(px(x)))\" y2=\"\(f(bottom + 4))\" stroke=\"#999999\"/>"
            out += "<text x=\"\(f(px(x)))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\">\(label(x, xDecimals))</text>\n"
        }
        out += "<text x=\"\(f(right))\" y=\"\(f(height - 4))\" text-anchor=\"end\" fill=\"#666666\">step</text>\n"

        let smoothed = zip(chart.raw, chart.series).contains { raw, line in
            !zip(raw.points, line.points).allSatisfy { $0.y == $1.y || ($0.y.isNaN && $1.y.isNaN) }
        }
        for (index, line) in chart.raw.enumerated() where smoothed {
            out += polylines(line, color: color(index), width: 1, opacity: 0.25, px: px, py: py)
        }
        for (index, line) in chart.series.enumerated() {
            out += polylines(line, color: color(index), width: 1.75, opacity: 1, px: px, py: py)
        }
        return out
    }

    /// One polyline per unbroken stretch of finite points (a null breaks the line); a lone point is a dot.
    private static func polylines(
        _ line: ChartSeries, color: String, width: Double, opacity: Double, px: (Double) -> Double, py: (Double) -> Double
    ) -> String {
        var stretches: [[(x: Double, y: Double)]] = [[]]
        for point in line.points {
            if point.x.isFinite && point.y.isFinite {
                stretches[stretches.count - 1].append(point)
            } else if !stretches[stretches.count - 1].isEmpty {
                stretches.append([])
            }
        }
        let stroke = "stroke=\"\(color)\" stroke-width=\"\(f(width))\"" + (opacity < 1 ? " stroke-opacity=\"\(f(opacity))\"" : "")
        var out = ""
        for stretch in stretches where !stretch.isEmpty {
            if stretch.count == 1 {
                let fill = opacity < 1 ? " fill-opacity=\"\(f(opacity))\"" : ""
                out += "<circle cx=\"\(f(px(stretch[0].x)))\" cy=\"\(f(py(stretch[0].y)))\" r=\"2.5\" fill=\"\(color)\"\(fill)/>\n"
                continue
            }
            let points = stretch.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" \(stroke) stroke-linejoin=\"round\" points=\"\(points)\"/>\n"
            // Sparse lines (held-out evals) also mark each point, so a reader sees where the measurements are.
            if opacity == 1 && line.points.count <= sparsePoints {
                for point in stretch {
                    out += "<circle cx=\"\(f(px(point.x)))\" cy=\"\(f(py(point.y)))\" r=\"2.5\" fill=\"\(color)\"/>\n"
                }
            }
        }
        return out
    }

    /// Round tick values (1, 2 or 5 × 10ⁿ apart, about five of them) inside [low, high], and the decimals
    /// their labels need.
    static func ticks(_ low: Double, _ high: Double) -> ([Double], Int) {
        let raw = (high - low) / 5
        let exponent = floor(log10(raw))
        let fraction = raw / pow(10, exponent)
        let nice: Double = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        let step = nice * pow(10, exponent)
        let first = (low / step).rounded(.up)
        let last = (high / step).rounded(.down)
        let values = stride(from: first, through: last, by: 1).map { $0 * step }
        return (values, max(0, Int(-floor(log10(step) + 1e-9))))
    }

    private static func label(_ value: Double, _ decimals: Int) -> String {
        let text = String(format: "%.\(decimals)f", value)
        return text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
    }

    /// A coordinate with two decimals, trailing zeros dropped.
    private static func f(_ value: Double) -> String {
        var text = String(format: "%.2f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text == "-0" ? "0" : text
    }

    private static func color(_ index: Int) -> String { Palette.svg[index % Palette.svg.count] }

    /// Text escaped for XML and HTML.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
