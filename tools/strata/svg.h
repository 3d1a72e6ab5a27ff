/* SPDX-License-Identifier: MIT */
/*
 * svg.h — a small SVG writer for the strata tools: a document with
 * rectangles, lines, text and groups written straight to a FILE (text and
 * attribute values XML-escaped), and a bar chart (grouped or stacked, with
 * axes, ticks, labels, legend and a tooltip per bar) built on them.
 *
 * Cost: O(output); no allocation.
 */
#ifndef STRATA_TOOL_SVG_H
#define STRATA_TOOL_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct st_svg {
    FILE *out;
    int groups; /* open <g> elements */
};

/* Start a document of width x height user units (pixels). */
void st_svg_begin(struct st_svg *s, FILE *out, double width, double height);
/* Close open groups and the document; 0, or -1 if the stream had an error. */
int st_svg_end(struct st_svg *s);
/* A group; transform (e.g. "translate(10,20)") and cls may be NULL. */
void st_svg_group_begin(struct st_svg *s, const char *cls, const char *transform);
void st_svg_group_end(struct st_svg *s);
/* A filled rectangle; tooltip (a <title>) may be NULL. */
void st_svg_rect(struct st_svg *s, double x, double y, double w, double h, const char *fill,
                 const char *tooltip);
void st_svg_line(struct st_svg *s, double x1, double y1, double x2, double y2, const char *stroke,
                 double width);
/* Text at (x, y); anchor "start", "middle" or "end"; rotate in degrees
 * about (x, y); bold for titles. */
void st_svg_text(struct st_svg *s, double x, double y, const char *anchor, double size,
                 double rotate, bool bold, const char *text);
/* Write text with &, <, >, " and ' escaped. */
void st_svg_escape(FILE *out, const char *text);
/* The i-th colour of the chart palette (cycles). */
const char *st_svg_color(size_t i);

/* A bar chart: one bar (or group of bars) per category, one colour per
 * series. values[s * ncats + c] is series s in category c (>= 0). */
struct st_svg_chart {
    const char *title;
    const char *subtitle; /* may be NULL */
    const char *x_label, *y_label;
    const char *unit; /* appended to values in tooltips, may be NULL */
    size_t ncats;
    const char *const *cats;
    size_t nseries;
    const char *const *series;
    const double *values;
    bool stacked;         /* stack the series; else side by side */
    double width, height; /* 0: 960 x 540 */
};

/* Write a whole SVG document holding the chart. 0, or -1 on bad input or
 * an output error. */
int st_svg_bar_chart(FILE *out, const struct st_svg_chart *c);
/* A "nice" axis step (1, 2 or 5 times a power of ten) giving about n ticks
 * up to max. */
double st_svg_nice_step(double max, int n);

#endif /* STRATA_TOOL_SVG_H */
