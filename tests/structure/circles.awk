# tests/structure/circles.awk: the circles of a graph of files, for the
# structure tests (layering_test.sh: includes, calls_test.sh: calls).
#
# The program that uses it (awk -f circles.awk -f program) fills in
# nodes[n] for every node, "folder/file" without its extension, and
# out[n, i] for i = 1..nout[n], the nodes n points to; and defines
# step(a, b), the text of the step from node a to node b of a circle
# ("a -> "), and name(n), the text of node n at a circle's end. Then
# find_circles() fills circles[folder] with what it found in each folder,
# one "\n#   a -> b -> a" line per circle: a depth-first search in which
# a node met again while it is still being searched closes a circle.

# The folder of path p.
function dir(p) {
    sub(/\/[^\/]*$/, "", p)
    return p
}

function find_circles(    n) {
    for (n in nodes)
        if (!colour[n]) circles_visit(n)
}

function circles_visit(n,    i, m, k, path) {
    colour[n] = 1
    stack[++depth] = n
    for (i = 1; i <= nout[n]; i++) {
        m = out[n, i]
        if (colour[m] == 1) {
            for (k = depth; k >= 1 && stack[k] != m; k--) ;
            path = ""
            for (; k < depth; k++) path = path step(stack[k], stack[k + 1])
            path = path step(n, m) name(m)
            circles[dir(n)] = circles[dir(n)] "\n#   " path
        } else if (colour[m] == 0) {
            circles_visit(m)
        }
    }
    depth--
    colour[n] = 2
}
