//! Details of the text format that the corpus and the zoo files do not pin down.

use spec::{Call, Expr, NetSpec, Shape};

const HEAD: &str = "name t\ninput 1 28 28\nclasses 10\n";

fn net(body: &str) -> NetSpec {
    spec::parse_checked(format!("{HEAD}{body}").as_bytes())
        .unwrap_or_else(|e| panic!("{e}\n{body}"))
}

fn layers(body: &str) -> Vec<Call> {
    net(body).layers
}

/// `parse(print(s)) == s`, and printing is a fixed point.
fn round_trips(s: &NetSpec) {
    let text = spec::print(s);
    let again = spec::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&again, s, "{text}");
    assert_eq!(spec::print(&again), text);
}

#[test]
fn comments_blank_lines_tabs_and_crlf() {
    let text = "# header comment\r\nname t   # trailing\r\n\r\n\tinput 1 28 28\r\nclasses 10\r\n  flatten\t\r\ndense 10 # head\r\n";
    let s = spec::parse_checked(text.as_bytes()).unwrap();
    assert_eq!(s, net("flatten\ndense 10\n"));
    assert_eq!(spec::print(&s), format!("{HEAD}\nflatten\ndense 10\n"));
}

#[test]
fn arguments_in_any_order_positional_by_name_and_defaults_are_one_call() {
    let a = layers("convBn 16 stride=2 kernel=3 act=relu6\nglobalAvgPool\ndense 10\n");
    let b = layers("convBn act=relu6 kernel=3 out=16 stride=2 pad=auto\nglobalAvgPool\ndense 10\n");
    assert_eq!(a, b);
    let c = &a[0];
    assert_eq!(c.op, "convBn");
    let names: Vec<&str> = c.args.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["out", "kernel", "stride", "act"]);
    assert_eq!(c.arg("kernel"), Some(&Expr::Int(3)));
    // An argument equal to its default is the same call as none.
    assert_eq!(
        layers("convBn 16 kernel=3 act=relu stride=1\nglobalAvgPool\ndense 10\n")[0],
        layers("convBn 16 kernel=3\nglobalAvgPool\ndense 10\n")[0]
    );
}

#[test]
fn stated_input_channels_are_checked_and_printed() {
    let s =
        net("convBn 16 kernel=3 in=1\nconvBn 32 kernel=3 in=16\nglobalAvgPool\ndense 10 in=32\n");
    assert!(spec::print(&s).contains("convBn 32 kernel=3 in=16\n"));
    assert!(spec::print(&s).contains("dense 10 in=32\n"));
    round_trips(&s);
}

#[test]
fn pool_stride_defaults_to_the_window() {
    let s =
        net("convBn 8 kernel=3\nmaxPool 2\navgPool 3 stride=1 pad=1\nglobalAvgPool\ndense 10\n");
    let shapes = s.check().unwrap();
    assert_eq!(shapes[1], Shape::Image { c: 8, h: 14, w: 14 });
    assert_eq!(shapes[2], Shape::Image { c: 8, h: 14, w: 14 });
}

#[test]
fn every_core_layer_prelude_block_and_combinator_round_trips() {
    // One spec calling every core layer, combinator and prelude block with arguments away from
    // their defaults.
    let text = "name all\ninput 3 32 32\nclasses 7\n\
        conv2d 8 kernel=1 stride=1 pad=0 groups=1 bias=false act=gelu in=3\n\
        convBn 16 kernel=3 stride=1 pad=1 groups=1 act=sigmoid in=8\n\
        batchNorm in=16\ninstanceNorm in=16\nlayerNorm in=16\nscale 0.5 in=16\n\
        maxPool 3 stride=1 pad=1\navgPool 3 stride=1 pad=1\n\
        act hswish\ndropout 0.125\ndropPath 0.25\nidentity\n\
        residual 16 blocks=2 stride=1 in=16\nbottleneck 32 blocks=2 stride=2 in=16\n\
        separableConv 32 stride=1 act=relu6 in=32\n\
        invertedResidual 32 expand=3 stride=1 blocks=2 in=32\n\
        mbConv 32 expand=2 kernel=5 stride=1 blocks=2 se=false act=hswish in=32\n\
        mbConvV3 40 expanded=64 kernel=3 stride=2 se=true act=hswish in=32\n\
        fusedMbConv 40 expand=2 kernel=3 stride=1 blocks=2 se=true act=relu in=40\n\
        uib 40 expand=2 start=5 mid=3 stride=1 act=relu6 in=40\n\
        convnextBlock 40 drop=0.1 scaleInit=0.5 in=40\n\
        squeezeExcite 10 inner=swish gate=hsigmoid in=40\n\
        basicBlock 40\nbottleneckBlock 40\n\
        fire 8 expand1=16 expand3=24 in=40\n\
        seq\n  conv2d 40 kernel=1\n\
        add stride=2\n  conv2d 40 kernel=3 stride=2\n\
        parallel concat\n  a: conv2d 8 kernel=1\n  b: conv2d 8 kernel=3\n\
        repeat 2\n  conv2d 16 kernel=3 stride=(2 if i == 0 else 1)\n\
        globalAvgPool keep=true\n\
        patchEmbed 24 patch=1 in=16\nlayerNorm\n\
        encoderBlock heads=2 mlp=8\n\
        attention 4\n\
        transformer heads=4 mlp=48 blocks=2 in=24\n\
        batchNorm in=24\ndense 7 act=geluErf in=24\n";
    let s = spec::parse_checked(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let called: std::collections::BTreeSet<&str> = s.layers.iter().map(|l| l.op.as_str()).collect();
    // Every core layer and combinator except the shape-only ones the zoo has.
    let missing: Vec<&str> = spec::CORE
        .iter()
        .map(|c| c.name)
        .chain(spec::prelude::blocks().iter().map(|b| b.name.as_str()))
        .filter(|k| !called.contains(k))
        .collect();
    assert_eq!(
        missing,
        [
            "flatten",
            "toTokens",
            "clsToken",
            "posEmbed",
            "clsPool",
            "invertedResidualBlock",
            "mbConvBlock",
            "fusedMbConvBlock"
        ]
    );
    round_trips(&s);
    // Every parameter and buffer has a unique name.
    let p = spec::params(&s).unwrap();
    let b = spec::buffers(&s).unwrap();
    let mut names: Vec<&str> = p.iter().chain(&b).map(|x| x.name.as_str()).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n);
    let shapes = s.check().unwrap();
    assert_eq!(shapes[17], Shape::Image { c: 40, h: 8, w: 8 }); // mbConvV3 stride 2
    assert_eq!(shapes[32], Shape::Tokens { t: 2, d: 24 }); // one 1×1 patch + CLS
}

#[test]
fn every_activation_name_parses() {
    for a in spec::Act::ALL {
        let l = layers(&format!("flatten\ndense 10 act={}\n", a.name()));
        assert_eq!(l[1].arg("act").is_some(), a != spec::Act::Identity);
        assert_eq!(spec::Act::from_name(a.name()), Some(a));
    }
}

#[test]
fn a_block_of_the_file_elaborates_with_its_own_names() {
    let s = net("# A conv stage with its own widths.\n\
         # Second doc line.\n\
         block stage width:int convs=2 act=relu\n\
         \x20 let half = width // 2\n\
         \x20 require width % 2 == 0 \"`width` must be even, got {width}\"\n\
         \x20 repeat convs\n\
         \x20   conv: convBn (half if i == 0 else width) kernel=3 act=act\n\
         \x20 extra: conv2d width kernel=1 if convs > 1 and not (act == relu6)\n\
         \n\
         stage 8\n\
         stage 16 convs=1 act=relu6\n\
         globalAvgPool\ndense 10\n");
    assert_eq!(s.blocks.len(), 1);
    assert_eq!(
        s.blocks[0].doc,
        ["A conv stage with its own widths.", "Second doc line."]
    );
    round_trips(&s);
    let names: Vec<String> = spec::params(&s)
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        [
            "l0.b0.conv.conv.w",
            "l0.b0.conv.bn.gamma",
            "l0.b0.conv.bn.beta",
            "l0.b1.conv.conv.w",
            "l0.b1.conv.bn.gamma",
            "l0.b1.conv.bn.beta",
            "l0.extra.w",
            "l0.extra.b",
            "l1.b0.conv.conv.w",
            "l1.b0.conv.bn.gamma",
            "l1.b0.conv.bn.beta",
            "l3.w",
            "l3.b",
        ]
    );
    let shapes = s.check().unwrap();
    assert_eq!(shapes[0], Shape::Image { c: 8, h: 28, w: 28 });
    assert_eq!(shapes[1], Shape::Image { c: 8, h: 28, w: 28 }); // one conv: half = 8
                                                                // The first conv of layer 0 maps 1 → 4 channels (half of 8).
    let p = spec::params(&s).unwrap();
    assert_eq!(p[0].shape, [4, 1, 3, 3]);
}

#[test]
fn expressions_print_with_the_parentheses_they_need() {
    let s = net(
        "block b w:int\n\
         \x20 conv2d ((w + 2) * 2 - w // 3 % 2) kernel=(1 if (w > 3) == (w < 100) else 3) stride=max(1, min(w, 2) - 1)\n\
         \x20 dropout (0.5 / w if not w == 1 and w > 0 or false else 0.0)\n\
         \x20 act gelu if -w < 0 - 1\n\
         \n\
         b 8\nglobalAvgPool\ndense 10\n",
    );
    round_trips(&s);
    let text = spec::print(&s);
    assert!(text.contains("conv2d ((w + 2) * 2 - w // 3 % 2) kernel=(1 if (w > 3) == (w < 100) else 3) stride=max(1, min(w, 2) - 1)"), "{text}");
    assert!(text.contains("act gelu if -w < 0 - 1"), "{text}");
    assert_eq!(
        s.check().unwrap()[0],
        Shape::Image {
            c: 20,
            h: 28,
            w: 28
        }
    );
}

#[test]
fn keyword_only_blocks_and_positional_blocks_print_as_written() {
    let s =
        net("block twice * w:int\n  conv2d w kernel=3\n  conv2d w kernel=3\n\nflatten\ndense 10\n");
    assert!(!s.blocks[0].positional);
    round_trips(&s);
    let e = spec::parse(
        format!(
            "{HEAD}block twice * w:int\n  a: conv2d w kernel=3\n\ntwice 8\nflatten\ndense 10\n"
        )
        .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "7:7: unexpected `8`: `twice` takes no positional values: w= in="
    );
}

#[test]
fn bodies_can_be_indented_with_tabs() {
    let s = net("block b w:int\n\tconv2d w kernel=3\n\tact relu\n\nb 4\nrepeat 2\n\tadd\n\t\tconv2d 4 kernel=3\nflatten\ndense 10\n");
    round_trips(&s);
    assert_eq!(
        spec::param_count(&s).unwrap(),
        40 + 2 * 148 + 3136 * 10 + 10
    );
}
