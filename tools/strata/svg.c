/* SPDX-License-Identifier: MIT */
/*
 * svg.c — the SVG writer and its bar chart. Elements are printed as they
 * are called for; the only state is the number of open groups. The chart
 * lays out a plot area with margins for the title, the axis labels and the
 * legend, scales the value axis to a nice round top, and draws one rect per
 * (series, category) with a tooltip. It does not do log scales or text
 * measurement (long labels may overlap).
 */
#include "svg.h"

#include <math.h>

void st_svg_escape(FILE *out, const char *text)
{
    for (const char *p = text; p && *p; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&apos;", out);
            break;
        default:
            /* control characters are not allowed in XML 1.0 */
            fputc((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n' ? ' ' : *p, out);
        }
    }
}

void st_svg_begin(struct st_svg *s, FILE *out, double width, double height)
{
    s->out = out;
    s->groups = 0;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n",
            width, height, width, height);
    st_svg_rect(s, 0, 0, width, height, "#ffffff", NULL);
}

int st_svg_end(struct st_svg *s)
{
    while (s->groups > 0)
        st_svg_group_end(s);
    fprintf(s->out, "</svg>\n");
    fflush(s->out);
    return ferror(s->out) ? -1 : 0;
}

void st_svg_group_begin(struct st_svg *s, const char *cls, const char *transform)
{
    fputs("<g", s->out);
    if (cls) {
        fputs(" class=\"", s->out);
        st_svg_escape(s->out, cls);
        fputc('"', s->out);
    }
    if (transform) {
        fputs(" transform=\"", s->out);
        st_svg_escape(s->out, transform);
        fputc('"', s->out);
    }
    fputs(">\n", s->out);
    s->groups++;
}

void st_svg_group_end(struct st_svg *s)
{
    if (s->groups == 0) return;
    fputs("</g>\n", s->out);
    s->groups--;
}

void st_svg_rect(struct st_svg *s, double x, double y, double w, double h, const char *fill,
                 const char *tooltip)
{
    fprintf(s->out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"", x, y, w,
            h);
    st_svg_escape(s->out, fill);
    if (!tooltip) {
        fputs("\"/>\n", s->out);
        return;
    }
    fputs("\"><title>", s->out);
    st_svg_escape(s->out, tooltip);
    fputs("</title></rect>\n", s->out);
}

void st_svg_line(struct st_svg *s, double x1, double y1, double x2, double y2, const char *stroke,
                 double width)
{
    fprintf(s->out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"", x1, y1, x2,
            y2);
    st_svg_escape(s->out, stroke);
    fprintf(s->out, "\" stroke-width=\"%.2f\"/>\n", width);
}

void st_svg_text(struct st_svg *s, double x, double y, const char *anchor, double size,
                 double rotate, bool bold, const char *text)
{
    fprintf(s->out, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%.1f\" text-anchor=\"%s\"", x, y, size,
            anchor);
    if (bold) fputs(" font-weight=\"bold\"", s->out);
    if (rotate != 0) fprintf(s->out, " transform=\"rotate(%.1f %.2f %.2f)\"", rotate, x, y);
    fputc('>', s->out);
    st_svg_escape(s->out, text);
    fputs("</text>\n", s->out);
}

const char *st_svg_color(size_t i)
{
    static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                          "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
    return palette[i % (sizeof(palette) / sizeof(palette[0]))];
}

double st_svg_nice_step(double max, int n)
{
    if (!(max > 0) || n < 1) return 1;
    double raw = max / n, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nice * mag;
}

/* ------------------------------------------------------------------ */
/* bar chart                                                           */

struct layout {
    double x, y, w, h; /* plot area */
    double top;        /* value at the top of the axis */
    double step;       /* between ticks */
};

static double value_at(const struct st_svg_chart *c, size_t s, size_t cat)
{
    return c->values[s * c->ncats + cat];
}

static double chart_max(const struct st_svg_chart *c)
{
    double max = 0;
    for (size_t cat = 0; cat < c->ncats; cat++) {
        double sum = 0;
        for (size_t s = 0; s < c->nseries; s++) {
            double v = value_at(c, s, cat);
            sum = c->stacked ? sum + v : fmax(sum, v);
        }
        max = fmax(max, sum);
    }
    return max > 0 ? max : 1;
}

static bool chart_valid(const struct st_svg_chart *c)
{
    if (!c->ncats || !c->nseries || !c->values || !c->cats || !c->series) return false;
    for (size_t i = 0; i < c->ncats * c->nseries; i++)
        if (!(c->values[i] >= 0) || !isfinite(c->values[i])) return false;
    return true;
}

static void format_tick(char *buf, size_t n, double v, double step)
{
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step));
    snprintf(buf, n, "%.*f", decimals, v);
}

static void draw_axes(struct st_svg *s, const struct st_svg_chart *c, const struct layout *l)
{
    char buf[64];
    for (double v = 0; v <= l->top + l->step / 2; v += l->step) {
        double y = l->y + l->h - v / l->top * l->h;
        st_svg_line(s, l->x, y, l->x + l->w, y, v == 0 ? "#333333" : "#dddddd", 1);
        format_tick(buf, sizeof(buf), v, l->step);
        st_svg_text(s, l->x - 8, y + 4, "end", 12, 0, false, buf);
    }
    st_svg_line(s, l->x, l->y, l->x, l->y + l->h, "#333333", 1);
    double slot = l->w / (double)c->ncats;
    for (size_t cat = 0; cat < c->ncats; cat++)
        st_svg_text(s, l->x + slot * ((double)cat + 0.5), l->y + l->h + 18, "middle", 12, 0, false,
                    c->cats[cat]);
    st_svg_text(s, l->x + l->w / 2, l->y + l->h + 46, "middle", 14, 0, false, c->x_label);
    st_svg_text(s, l->x - 58, l->y + l->h / 2, "middle", 14, -90, false, c->y_label);
}

static void bar_tooltip(char *buf, size_t n, const struct st_svg_chart *c, size_t s, size_t cat)
{
    snprintf(buf, n, "%s, %s: %.6g%s%s", c->series[s], c->cats[cat], value_at(c, s, cat),
             c->unit ? " " : "", c->unit ? c->unit : "");
}

static void draw_bars(struct st_svg *s, const struct st_svg_chart *c, const struct layout *l)
{
    char tip[256];
    double slot = l->w / (double)c->ncats;
    double bar = c->stacked ? slot * 0.7 : slot * 0.8 / (double)c->nseries;
    for (size_t cat = 0; cat < c->ncats; cat++) {
        double x0 = l->x + slot * (double)cat + (slot - (c->stacked ? bar : slot * 0.8)) / 2;
        double acc = 0;
        for (size_t ser = 0; ser < c->nseries; ser++) {
            double v = value_at(c, ser, cat), h = v / l->top * l->h;
            double x = c->stacked ? x0 : x0 + bar * (double)ser;
            double base = c->stacked ? acc : 0;
            acc += v;
            if (v <= 0) continue;
            bar_tooltip(tip, sizeof(tip), c, ser, cat);
            st_svg_rect(s, x, l->y + l->h - base / l->top * l->h - h, bar, h, st_svg_color(ser),
                        tip);
        }
    }
}

static void draw_legend(struct st_svg *s, const struct st_svg_chart *c, const struct layout *l)
{
    double x = l->x + l->w + 24;
    for (size_t ser = 0; ser < c->nseries; ser++) {
        double y = l->y + 20.0 * (double)ser;
        st_svg_rect(s, x, y, 12, 12, st_svg_color(ser), NULL);
        st_svg_text(s, x + 18, y + 11, "start", 12, 0, false, c->series[ser]);
    }
}

int st_svg_bar_chart(FILE *out, const struct st_svg_chart *c)
{
    if (!chart_valid(c)) return -1;
    double w = c->width > 0 ? c->width : 960, h = c->height > 0 ? c->height : 540;
    struct layout l = {90, 70, w - 90 - 200, h - 70 - 70, 0, 0};
    double max = chart_max(c);
    l.step = st_svg_nice_step(max, 5);
    l.top = ceil(max / l.step) * l.step;
    struct st_svg s;
    st_svg_begin(&s, out, w, h);
    st_svg_text(&s, w / 2, 28, "middle", 18, 0, true, c->title ? c->title : "");
    if (c->subtitle) st_svg_text(&s, w / 2, 50, "middle", 13, 0, false, c->subtitle);
    st_svg_group_begin(&s, "axes", NULL);
    draw_axes(&s, c, &l);
    st_svg_group_end(&s);
    st_svg_group_begin(&s, "bars", NULL);
    draw_bars(&s, c, &l);
    st_svg_group_end(&s);
    st_svg_group_begin(&s, "legend", NULL);
    draw_legend(&s, c, &l);
    return st_svg_end(&s);
}
