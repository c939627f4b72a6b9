/** The run report: plots (vega-lite → SVG → PNG), report.md / report.html, terminal summary. */
export * from './inputs.js';
export { summarizeRun, metricSeries, lastMetric, type RunSummary, type StageStatus, type Sample } from './summary.js';
export { writeRunReport, summaryBlocks, REPORT_MD, REPORT_HTML, PLOTS_DIR, type RunReport, type PlotFile } from './report.js';
export { toMarkdown, toHtml, type Block } from './document.js';
export { specToSvg, svgToPng, pngInfo, plotFontFiles } from './render.js';
export { terminalSummary, miniChart } from './terminal.js';
